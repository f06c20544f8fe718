package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/notify"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/window"
)

// A rule checks the value a flag ended up with, wherever it came from (command line, the
// environment, the configuration file); its error says what the flag takes. parseArgs runs the
// rule of every flag a command has, so that a setting that makes no sense is a usage error
// naming the flag or the variable and where it was set, before anything is read or written.
type rule func(v flag.Value) error

// rules are the rules of the flags that have one, by flag name.
func rules() map[string]rule {
	return map[string]rule{
		"node":                            str(optional(nodeName)),
		"group":                           str(optional(groupName)),
		"prefix":                          str(prefixKey),
		"consul-addr":                     str(optional(consulAddr)),
		"datacenter":                      str(optional(datacenterName)),
		"log-level":                       str(logLevel),
		"log-format":                      str(oneOf("text", "json")),
		"task-timeout":                    duration(positive),
		"reboot-timeout":                  duration(positive),
		"interval":                        duration(positive),
		"cooldown":                        duration(notNegative),
		"stay-green":                      duration(notNegative),
		"window-spread":                   duration(notNegative),
		"reboot-deadline":                 duration(notNegative),
		"min-reboot-interval":             duration(notNegative),
		"reboot-required-command-timeout": duration(positive),
		"breaker":                         str(breaker),
		"notify-url":                      str(optional(notifyURL)),
		"notify-format":                   str(oneOf(notify.FormatNames()...)),
		"notify-template":                 str(notifyTemplate),
		"listen":                          str(optional(listenAddr)),
		"alerts-url":                      str(optional(notifyURL)),
		"alerts-filter":                   str(alertsFilter),
		"alerts-every":                    duration(positive),
		"reboot-window":                   each(rebootWindow),
		"blackout":                        each(blackout),
	}
}

// setting is where a flag's value came from: "command line", or e.setting's source (the
// environment or the configuration file) with the value as it was written there.
type setting struct {
	from  string
	value string
}

// checkRules runs the rules of fs's flags; source says where each flag's value came from
// (absent: its default).
func checkRules(fs *flag.FlagSet, source map[string]setting) error {
	var err error
	all := rules()
	fs.VisitAll(func(f *flag.Flag) {
		r, ok := all[f.Name]
		if !ok || err != nil {
			return
		}
		if rerr := r(f.Value); rerr != nil {
			err = settingError(f, source[f.Name], rerr)
		}
	})
	return err
}

// settingError is a usage error naming a setting as it was given: the flag on the command line,
// or the variable, its value as written and where it was set.
func settingError(f *flag.Flag, s setting, err error) error {
	switch s.from {
	case "", "command line":
		return fmt.Errorf("%w: --%s %s: %v", errUsage, f.Name, f.Value.String(), err)
	}
	return fmt.Errorf("%w: %s=%q %s: %v", errUsage, envName(f.Name), s.value, where(s.from), err)
}

// takes says what a flag of a plain type takes, for a value it could not read ("" for its own
// types, whose errors say so).
func takes(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case bool:
		return ": want true or false"
	case time.Duration:
		return ": want a duration such as 90s, 5m or 1h30m"
	}
	return ""
}

// where says where a setting was found: e.setting's source ("environment" or a file's path).
func where(source string) string {
	if source == "environment" {
		return "in the environment"
	}
	return "in " + source
}

func str(check func(string) error) rule {
	return func(v flag.Value) error { return check(v.String()) }
}

// each checks every value of a list flag.
func each(check func(string) error) rule {
	return func(v flag.Value) error {
		l, ok := v.(*listFlag)
		if !ok {
			return check(v.String())
		}
		for _, s := range l.values {
			if err := check(s); err != nil {
				return err
			}
		}
		return nil
	}
}

// optional: "" means the default, which needs no check.
func optional(check func(string) error) func(string) error {
	return func(s string) error {
		if s == "" {
			return nil
		}
		return check(s)
	}
}

func duration(check func(time.Duration) error) rule {
	return func(v flag.Value) error {
		g, ok := v.(flag.Getter)
		if !ok {
			return errors.New("not a duration")
		}
		d, ok := g.Get().(time.Duration)
		if !ok {
			return errors.New("not a duration")
		}
		return check(d)
	}
}

func positive(d time.Duration) error {
	if d <= 0 {
		return errors.New("want a duration above 0, such as 90s or 5m")
	}
	return nil
}

func notNegative(d time.Duration) error {
	if d < 0 {
		return errors.New("want a duration of 0 (none) or more, such as 15m")
	}
	return nil
}

func oneOf(values ...string) func(string) error {
	return func(s string) error {
		for _, v := range values {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("want %s", orList(values))
	}
}

func orList(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

func logLevel(s string) error {
	for _, l := range []string{"debug", "info", "warn", "error"} {
		if strings.EqualFold(s, l) {
			return nil
		}
	}
	return errors.New("want debug, info, warn or error")
}

func nodeName(s string) error  { return store.ValidNode(s) }
func groupName(s string) error { return store.ValidGroup(s) }

func prefixKey(s string) error {
	if err := store.CheckKey(s); err != nil {
		return fmt.Errorf("%v; want a KV path such as %s", err, store.DefaultPrefix)
	}
	return nil
}

func breaker(s string) error {
	_, err := history.ParseBreaker(s)
	return err
}

func rebootWindow(s string) error {
	_, err := window.Parse(s)
	return err
}

// blackout checks dates, or that the file @FILE names can be read and holds dates.
func blackout(s string) error {
	name, isFile := strings.CutPrefix(s, "@")
	if !isFile {
		_, err := window.ParseBlackouts(strings.NewReader(s))
		return err
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("want YYYY-MM-DD dates, or @FILE naming a file of them: %w", err)
	}
	defer f.Close()
	if _, err := window.ParseBlackouts(f); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

const consulAddrForms = "want HOST[:PORT] (such as 127.0.0.1:8500 or consul.example.com), unix:///PATH/TO/SOCKET, or http(s)://HOST[:PORT]"

// consulAddr checks a Consul HTTP address as the Consul client takes it: host[:port], a
// unix:// socket path, or an http(s) URL (which may carry a path prefix, for a proxy).
func consulAddr(s string) error {
	bad := func(why string) error { return fmt.Errorf("%s: %s", why, consulAddrForms) }
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		if strings.ContainsAny(s, "/?#@ \t") {
			return bad("not an address")
		}
		if err := hostPort(s); err != nil {
			return bad(err.Error())
		}
		return nil
	}
	switch scheme {
	case "unix":
		if rest == "" {
			return bad("no socket path")
		}
		return nil
	case "http", "https":
		u, err := url.Parse(s)
		if err != nil {
			return bad("not a URL")
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return bad("a user, query or fragment, which the Consul client does not take (the token goes in CONSUL_HTTP_TOKEN_FILE)")
		}
		if err := hostPort(u.Host); err != nil {
			return bad(err.Error())
		}
		return nil
	}
	return bad(fmt.Sprintf("scheme %q", scheme))
}

// hostPort checks "host" or "host:port", the host a name or an IP address (IPv6 in brackets).
func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	var aerr *net.AddrError
	if errors.As(err, &aerr) && aerr.Err == "missing port in address" {
		host, port, err = s, "", nil
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	if err != nil {
		return errors.New("not host:port (an IPv6 address goes in brackets: [::1]:8500)")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q", port)
		}
	}
	if host == "" {
		return errors.New("no host")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	for _, r := range host {
		if !hostChar(r) {
			return fmt.Errorf("host %q", host)
		}
	}
	return nil
}

// hostChar says whether r may be in a host name.
func hostChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
}

// listenAddr checks an address to listen on: HOST:PORT or :PORT.
func listenAddr(s string) error {
	const want = "want HOST:PORT or :PORT, such as :8470 or 127.0.0.1:8470"
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New(want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: %s", port, want)
	}
	if host != "" {
		if err := hostPort(host); err != nil {
			return fmt.Errorf("%v: %s", err, want)
		}
	}
	return nil
}

// notifyURL checks the webhook: an http(s) URL with a host.
func notifyURL(s string) error {
	const want = "want an http:// or https:// URL with a host, such as https://alerts.example.com/rebootmgr"
	u, err := url.Parse(s)
	if err != nil {
		return errors.New(want)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: %s", u.Scheme, want)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("no host: %s", want)
	}
	if err := hostPort(u.Host); err != nil {
		return fmt.Errorf("%v: %s", err, want)
	}
	return nil
}
