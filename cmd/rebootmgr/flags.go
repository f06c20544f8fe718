package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
)

// connFlags are how a command reaches Consul and where rebootmgr's keys are, and how it logs:
// every command that talks to Consul takes them.
type connFlags struct {
	prefix     string
	consulAddr string
	logFormat  string
	logLevel   string
	// datacenter and allDatacenters: see registerDatacenters; only operator commands take them.
	datacenter     string
	allDatacenters bool
}

func (g *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.prefix, "prefix", store.DefaultPrefix, "Consul KV prefix of rebootmgr's keys")
	fs.StringVar(&g.consulAddr, "consul-addr", "", "Consul HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500; token and TLS follow Consul's CONSUL_* variables)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func (g *connFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(logkey.Unique(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(logkey.Unique(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, g.logFormat)
}

func (g *connFlags) consul(e env) (*api.Client, error) {
	return g.consulVia(e, nil)
}

// consulVia is consul with every request going through wrap(transport), when wrap is set.
func (g *connFlags) consulVia(e env, wrap func(http.RoundTripper) http.RoundTripper) (*api.Client, error) {
	cfg := api.DefaultConfig()
	e.applyConsulFile(cfg)
	if g.consulAddr != "" {
		cfg.Address = g.consulAddr
	} else if err := optional(consulAddr)(cfg.Address); err != nil {
		// Consul's own variable, from the environment or the configuration file.
		_, from, ok := e.setting("CONSUL_HTTP_ADDR")
		if !ok {
			from = "environment"
		}
		return nil, fmt.Errorf("%w: CONSUL_HTTP_ADDR=%q %s: %v", errUsage, cfg.Address, where(from), err)
	}
	cfg.Address = withDefaultPort(cfg.Address)
	if g.datacenter != "" {
		cfg.Datacenter = g.datacenter
	}
	if wrap != nil {
		if err := wrapTransport(cfg, wrap); err != nil {
			return nil, fmt.Errorf("consul client: %w", err)
		}
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	return client, nil
}

// parse parses args, then takes every flag not given on the command line from the
// environment variable REBOOTMGR_<NAME> (dashes as underscores), once no REBOOTMGR_* name is
// unknown (see checkNames). No arguments are allowed besides the flags.
func parse(fs *flag.FlagSet, args []string, e env) error {
	_, err := parseArgs(fs, args, e, 0)
	return err
}

// parseArgs is parse for a command that takes up to maxArgs arguments, which it returns. Flags
// may come before or after them.
func parseArgs(fs *flag.FlagSet, args []string, e env, maxArgs int) ([]string, error) {
	fs.SetOutput(io.Discard)
	// The flag package calls Usage on every error too; the help goes to stdout only when it was
	// asked for, so that a mistyped flag never pollutes what a script reads (--json).
	help := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = help }()
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				if help != nil {
					help()
				}
				return nil, err
			}
			if hint := unknownFlagHint(err); hint != "" {
				return nil, commandLineError{fmt.Errorf("%w: %v: %s", errUsage, err, hint)}
			}
			return nil, commandLineError{fmt.Errorf("%w: %v", errUsage, err)}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) > maxArgs {
		return nil, commandLineError{fmt.Errorf("%w: unexpected argument %q", errUsage, positional[maxArgs])}
	}
	if err := e.checkNames(); err != nil {
		return nil, err
	}
	source := map[string]setting{}
	fs.Visit(func(f *flag.Flag) { source[f.Name] = setting{from: "command line"} })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if source[f.Name].from != "" || err != nil {
			return
		}
		name := envName(f.Name)
		v, from, ok := e.setting(name)
		if !ok {
			return
		}
		source[f.Name] = setting{from: from, value: v}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("%w: %s=%q %s: %v%s", errUsage, name, v, where(from), serr, takes(f))
		}
	})
	if err != nil {
		return nil, err
	}
	return positional, checkRules(fs, source)
}

// commandLineError is a command line the flags cannot be read from: an unknown flag, a flag
// without its value, an argument too many. run follows it with the command's synopsis.
type commandLineError struct{ err error }

func (e commandLineError) Error() string { return e.err.Error() }
func (e commandLineError) Unwrap() error { return e.err }

func envName(flagName string) string {
	return "REBOOTMGR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable flag; the first value given replaces the defaults. One value may
// hold several, separated by sep (":" when empty, as in PATH), which is how the environment
// gives a list.
type listFlag struct {
	values []string
	given  bool
	sep    string
}

func (l *listFlag) separator() string {
	if l.sep == "" {
		return ":"
	}
	return l.sep
}

func (l *listFlag) String() string { return strings.Join(l.values, l.separator()) }

func (l *listFlag) Set(v string) error {
	if !l.given {
		l.values, l.given = nil, true
	}
	for _, p := range strings.Split(v, l.separator()) {
		if strings.TrimSpace(p) != "" {
			l.values = append(l.values, strings.TrimSpace(p))
		}
	}
	return nil
}

// settleFlag is "auto" or a duration.
type settleFlag struct{ d time.Duration }

func (s *settleFlag) String() string {
	if s.d == pipeline.SettleAuto {
		return "auto"
	}
	return s.d.String()
}

func (s *settleFlag) Set(v string) error {
	if v == "auto" {
		s.d = pipeline.SettleAuto
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("want auto or a duration such as 90s")
	}
	s.d = d
	return nil
}

// wrapTransport gives cfg an HTTP client whose transport is wrapped, built as the Consul client
// would build its own (TLS settings from the environment included; a unix:// address dials the
// socket).
func wrapTransport(cfg *api.Config, wrap func(http.RoundTripper) http.RoundTripper) error {
	transport := cfg.Transport
	if socket, ok := strings.CutPrefix(cfg.Address, "unix://"); ok {
		transport = http.DefaultTransport.(*http.Transport).Clone()
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}
		cfg.Address, cfg.Scheme = "localhost", "http"
	}
	hc, err := api.NewHttpClient(transport, cfg.TLSConfig)
	if err != nil {
		return err
	}
	hc.Transport = wrap(hc.Transport)
	cfg.HttpClient = hc
	return nil
}

// withDefaultPort gives an HTTP address without a port Consul's HTTP port: "10.0.0.1" (a host
// alone, as older tools took it) is 10.0.0.1:8500, not port 80. Sockets, https and addresses
// that name a port are left as they are.
func withDefaultPort(addr string) string {
	scheme, hostport, found := strings.Cut(addr, "://")
	if !found {
		scheme, hostport = "", addr
	}
	if (scheme != "" && scheme != "http") || hostport == "" {
		return addr
	}
	_, _, err := net.SplitHostPort(hostport)
	var aerr *net.AddrError
	if err == nil || !errors.As(err, &aerr) || aerr.Err != "missing port in address" {
		return addr
	}
	hostport += ":8500"
	if found {
		return scheme + "://" + hostport
	}
	return hostport
}
