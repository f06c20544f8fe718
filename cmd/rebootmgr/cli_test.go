package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs a command line in this process with the given environment (no configuration
// file unless it names one), as main does.
func runCLI(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(context.Background(), args, testEnv(environ), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestBadSettings: a setting that makes no sense is a usage error (exit 64), found before
// anything is read or written, wherever it was given: on the command line, in the environment
// or in the configuration file. The one line says which flag or variable, where it was set, and
// what it takes; stdout stays empty. No Consul agent runs: none is reached.
func TestBadSettings(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "holidays")
	tests := []struct {
		command, flag, value string
		// want is what the message must say the setting takes; wantEnv what it must say
		// besides when the setting comes from the environment or the file.
		want, wantEnv string
	}{
		{"reboot", "cooldown", "-1s", "want a duration of 0 (none) or more", ""},
		{"check", "cooldown", "-15m", "want a duration of 0 (none) or more", ""},
		{"reboot", "reboot-deadline", "-30m", "want a duration of 0 (none) or more", ""},
		{"reboot", "stay-green", "-1m", "want a duration of 0 (none) or more", ""},
		{"reboot", "min-reboot-interval", "-1h", "want a duration of 0 (none) or more", ""},
		{"daemon", "min-reboot-interval", "-5m", "want a duration of 0 (none) or more", ""},
		{"check", "reboot-required-command-timeout", "0s", "want a duration above 0", ""},
		{"reboot", "window-spread", "-1h", "want a duration of 0 (none) or more", ""},
		{"daemon", "interval", "0", "want a duration above 0", ""},
		{"daemon", "interval", "-5m", "want a duration above 0", ""},
		{"daemon", "reboot-timeout", "0s", "want a duration above 0", ""},
		{"daemon", "reboot-timeout", "-10m", "want a duration above 0", ""},
		{"daemon", "task-timeout", "-1s", "want a duration above 0", ""},
		{"reboot", "settle", "-1s", "want auto or a duration", ""},
		{"reboot", "cooldown", "soon", "parse error", "want a duration such as 90s"},
		{"daemon", "watch", "sometimes", "parse error", "want true or false"},
		{"status", "consul-addr", "ftp://consul:8500", `scheme "ftp": want HOST[:PORT]`, ""},
		{"status", "consul-addr", "consul:0", `port "0"`, ""},
		{"status", "consul-addr", "consul:99999", `port "99999"`, ""},
		{"status", "consul-addr", "consul:http", "want HOST[:PORT]", ""},
		{"status", "consul-addr", "::1", "an IPv6 address goes in brackets", ""},
		{"status", "consul-addr", "consul/v1", "not an address", ""},
		{"status", "consul-addr", "consul 8500", "not an address", ""},
		{"status", "consul-addr", "unix://", "no socket path", ""},
		{"status", "consul-addr", "http://", "no host", ""},
		{"status", "consul-addr", "https://user:secret@consul", "CONSUL_HTTP_TOKEN_FILE", ""},
		{"status", "consul-addr", "http://consul:8500/?dc=x", "a user, query or fragment", ""},
		{"trigger", "consul-addr", "consul:8500:1", "want HOST[:PORT]", ""},
		{"daemon", "notify-url", "alerts.example.com/hook", "want an http:// or https:// URL with a host", ""},
		{"daemon", "notify-url", "ftp://alerts.example.com", `scheme "ftp"`, ""},
		{"daemon", "notify-url", "https://", "no host", ""},
		{"daemon", "notify-url", "https:///hook", "no host", ""},
		{"reboot", "notify-url", "https://alerts.example.com:99999/", "want an http:// or https:// URL", ""},
		{"reboot", "blackout", "@" + missing, "no such file", ""},
		{"check", "blackout", "@" + missing, "no such file", ""},
		{"reboot", "blackout", "2026-13-01", "want YYYY-MM-DD", ""},
		{"reboot", "settle", "-1s", "want auto or a duration", ""},
		{"reboot", "cooldown", "soon", "parse error", "want a duration such as 90s"},
		{"daemon", "watch", "sometimes", "parse error", "want true or false"},
		{"reboot", "reboot-window", "02:00-05:00", "want DAYS HH:MM-HH:MM", ""},
		{"reboot", "reboot-window", "at night", `unknown day "at"`, ""},
		{"reboot", "breaker", "3", "want FAILURES/PERIOD", ""},
		{"status", "log-level", "loud", "want debug, info, warn or error", ""},
		{"status", "log-format", "xml", "want text or json", ""},
		{"history", "group", "a/b", "only letters, digits", ""},
		{"history", "prefix", "service//rebootmgr", "want a KV path", ""},
	}
	for _, tt := range tests {
		for _, where := range []string{"command line", "environment", "file"} {
			t.Run(fmt.Sprintf("%s --%s %s/%s", tt.command, tt.flag, tt.value, where), func(t *testing.T) {
				args := []string{tt.command}
				environ := map[string]string{}
				name := envName(tt.flag)
				says := []string{tt.want}
				switch where {
				case "command line":
					args = append(args, "--"+tt.flag+"="+tt.value)
					says = append(says, "-"+tt.flag)
				case "environment":
					environ[name] = tt.value
					says = append(says, fmt.Sprintf("%s=%q in the environment", name, tt.value), tt.wantEnv)
				case "file":
					file := filepath.Join(t.TempDir(), "rebootmgr")
					writeFile(t, file, fmt.Sprintf("# a node's settings\n%s=%q\n", name, tt.value))
					environ["REBOOTMGR_CONFIG"] = file
					says = append(says, fmt.Sprintf("%s=%q in %s", name, tt.value, file), tt.wantEnv)
				}
				r := runCLI(t, environ, args...)
				if r.code != exitUsage || r.stdout != "" {
					t.Fatalf("want exit %d and nothing on stdout, got %s", exitUsage, r)
				}
				last := lastLine(r.stderr)
				if !strings.HasPrefix(last, "rebootmgr "+tt.command+": usage: ") {
					t.Fatalf("the last line does not say why: %q", last)
				}
				for _, s := range says {
					if !strings.Contains(last, s) {
						t.Errorf("%q does not say %q", last, s)
					}
				}
			})
		}
	}
}

// TestGoodSettings: what the rules must let through: every form of Consul address the client
// takes, webhooks, and zero where zero means none.
func TestGoodSettings(t *testing.T) {
	holidays := filepath.Join(t.TempDir(), "holidays")
	writeFile(t, holidays, "# ours\n2026-12-24\n2026-12-25,2026-12-26\n")
	for _, args := range [][]string{
		{"--consul-addr", "10.0.0.1"},
		{"--consul-addr", "10.0.0.1:8500"},
		{"--consul-addr", "consul.service.consul"},
		{"--consul-addr", "consul_1.example.com:8501"},
		{"--consul-addr", "[::1]"},
		{"--consul-addr", "[::1]:8500"},
		{"--consul-addr", "unix:///run/consul/http.sock"},
		{"--consul-addr", "http://127.0.0.1:8500"},
		{"--consul-addr", "https://consul.example.com"},
		{"--consul-addr", "https://proxy.example.com/consul"},
		{"--notify-url", "https://alerts.example.com/rebootmgr"},
		{"--notify-url", "http://127.0.0.1:9000/hook?team=ops"},
		{"--cooldown", "0", "--reboot-deadline", "0", "--stay-green", "0s", "--window-spread", "0", "--min-reboot-interval", "0"},
		{"--reboot-required-command", "! needs-restarting -r", "--reboot-required-command", "needrestart -b | grep -q 'KSTA: 3'", "--reboot-required-command-timeout", "1m"},
		{"--interval", "1ms", "--reboot-timeout", "200ms", "--task-timeout", "1s", "--settle", "0s"},
		{"--blackout", "@" + holidays, "--blackout", "2027-01-01"},
		{"--log-level", "DEBUG", "--log-format", "json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"config"}, args...)...)
			if r.code != 0 {
				t.Fatalf("refused: %s", r)
			}
		})
	}
	// Consul's own variable, in the configuration file, is checked as well, and named.
	file := filepath.Join(t.TempDir(), "rebootmgr")
	writeFile(t, file, "CONSUL_HTTP_ADDR=consul/8500\n")
	if _, inEnv := os.LookupEnv("CONSUL_HTTP_ADDR"); !inEnv {
		r := runCLI(t, map[string]string{"REBOOTMGR_CONFIG": file}, "status")
		if r.code != exitUsage || !strings.Contains(r.stderr, `CONSUL_HTTP_ADDR="consul/8500" in `+file) {
			t.Fatalf("a bad CONSUL_HTTP_ADDR in the file: %s", r)
		}
	}
}

// TestCommandLine: help lists the commands however it is asked for, --version is version, and
// a command line that cannot be read (an unknown flag, a flag without its value, an argument
// too many, an unknown command) prints the command's synopsis and the reason to stderr, exit 64,
// and nothing on stdout, so that what a script reads (--json) is never polluted.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		// environ: a configuration file that is missing, for the commands that must work without.
		environ map[string]string
		code    int
		stdout  string // "" means stdout must stay empty
		stderr  string // the first line of stderr
		reason  string // the last line of stderr
	}{
		{args: []string{"--help"}, stdout: "Commands:"},
		{args: []string{"-h"}, stdout: "Commands:"},
		{args: []string{"-help"}, stdout: "Commands:"},
		{args: []string{"help"}, stdout: "Commands:"},
		{args: []string{"help", "history"}, stdout: "Usage: rebootmgr history"},
		{args: []string{"history", "-h"}, stdout: "Usage: rebootmgr history"},
		{args: []string{"--version"}, stdout: "rebootmgr " + version},
		{args: []string{"-version"}, stdout: "rebootmgr " + version},
		{args: []string{"version"}, stdout: "rebootmgr " + version},
		{args: []string{"--version"}, environ: map[string]string{"REBOOTMGR_CONFIG": "/nonexistent/rebootmgr"}, stdout: "rebootmgr " + version},
		{args: []string{"status", "--json", "--no-such-flag"}, code: exitUsage,
			stderr: "Usage: rebootmgr status [--json]  (rebootmgr status -h: every flag)",
			reason: "rebootmgr status: usage: flag provided but not defined: -no-such-flag"},
		{args: nil, code: exitUsage,
			stderr: "rebootmgr reboots the nodes", reason: "rebootmgr: no command given: rebootmgr reboot reboots this node"},
		{args: []string{"--dry-run"}, code: exitUsage,
			stderr: "rebootmgr reboots the nodes", reason: "rebootmgr: no command given: rebootmgr reboot reboots this node"},
		{args: []string{"--no-such-flag"}, code: exitUsage,
			stderr: "rebootmgr reboots the nodes", reason: "rebootmgr: no command given: rebootmgr reboot reboots this node"},
		{args: []string{"daemon", "--interval"}, code: exitUsage,
			stderr: "Usage: rebootmgr daemon [flags]", reason: "rebootmgr daemon: usage: flag needs an argument: -interval"},
		{args: []string{"history", "n1", "n2"}, code: exitUsage,
			stderr: "Usage: rebootmgr history", reason: `rebootmgr history: usage: unexpected argument "n2"`},
		{args: []string{"status", "-json=maybe"}, code: exitUsage,
			stderr: "Usage: rebootmgr status", reason: "rebootmgr status: usage: invalid boolean value"},
		{args: []string{"frobnicate"}, code: exitUsage,
			stderr: "Usage: rebootmgr COMMAND [flags]", reason: `rebootmgr: unknown command "frobnicate" (see rebootmgr help)`},
		// A near-miss, or another tool's word, gets the command it may have meant.
		{args: []string{"start"}, code: exitUsage,
			stderr: "Usage: rebootmgr COMMAND [flags]", reason: `rebootmgr: unknown command "start": did you mean resume?`},
		{args: []string{"unpause", "--group", "compute"}, code: exitUsage,
			stderr: "Usage: rebootmgr COMMAND [flags]", reason: `rebootmgr: unknown command "unpause": did you mean resume?`},
		{args: []string{"stauts"}, code: exitUsage,
			stderr: "Usage: rebootmgr COMMAND [flags]", reason: `rebootmgr: unknown command "stauts": did you mean status?`},
		{args: []string{"triger"}, code: exitUsage,
			stderr: "Usage: rebootmgr COMMAND [flags]", reason: `rebootmgr: unknown command "triger": did you mean trigger?`},
		{args: []string{"set-max", "3"}, code: exitUsage,
			stderr: "Usage: rebootmgr COMMAND [flags]", reason: `rebootmgr: unknown command "set-max": did you mean limit?`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, tt.environ, tt.args...)
			if r.code != tt.code {
				t.Fatalf("want exit %d, got %s", tt.code, r)
			}
			if tt.stdout == "" && r.stdout != "" {
				t.Errorf("stdout is not empty: %q", r.stdout)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout lacks %q: %s", tt.stdout, r)
			}
			if strings.Contains(tt.stdout, "Commands:") && strings.Contains(r.stdout, "-reboot-command") {
				t.Errorf("help shows the reboot command's flags instead of the commands: %s", r.stdout)
			}
			first, _, _ := strings.Cut(r.stderr, "\n")
			if !strings.HasPrefix(first, tt.stderr) {
				t.Errorf("the first line of stderr is %q, want %q", first, tt.stderr)
			}
			if tt.reason != "" && !strings.HasPrefix(lastLine(r.stderr), tt.reason) {
				t.Errorf("the last line of stderr is %q, want %q", lastLine(r.stderr), tt.reason)
			}
			if tt.code == 0 && r.stderr != "" {
				t.Errorf("stderr is not empty: %q", r.stderr)
			}
		})
	}
}

// TestEachCommandOffersWhatItUses: a command's help lists the flags it uses and no other, in
// groups by purpose; a setting of another command's, in the shared file or the environment, is
// still known to it (not an error), only unused.
func TestEachCommandOffersWhatItUses(t *testing.T) {
	tests := []struct {
		command    string
		has, lacks []string
	}{
		{"status", []string{"json", "node", "reboot-window", "reboot-required-file", "consul-addr", "tasks-dir"},
			[]string{"reboot-command", "dry-run", "settle", "group", "breaker", "reboot-required-command", "interval", "force", "task-timeout", "clock-offset"}},
		{"check", []string{"node", "group", "reboot-window", "cooldown", "reboot-required-command"},
			[]string{"reboot-command", "dry-run", "settle", "breaker", "notify-url", "interval", "json", "task-timeout", "python-markers", "clock-offset"}},
		{"reboot", []string{"reboot-command", "check-triggers", "force", "dry-run", "reboot-window", "node", "group", "clock-offset"},
			[]string{"interval", "enabled", "json", "metrics-addr"}},
		{"daemon", []string{"interval", "enabled", "metrics-addr", "reboot-command", "reboot-window", "clock-offset"},
			[]string{"check-triggers", "force", "json"}},
		{"trigger", []string{"node", "reason", "force"}, []string{"group", "reboot-command"}},
		{"cancel", []string{"node"}, []string{"group", "reason", "force"}},
		{"stop", []string{"group", "reason", "force"}, []string{"node"}},
		{"resume", []string{"group"}, []string{"node", "reason", "force"}},
		{"limit", []string{"per-zone", "force", "prefix"}, []string{"node", "group"}},
		{"history", []string{"group", "json"}, []string{"node"}},
		{"unlock", []string{"group", "force", "cancel-request"}, []string{"node"}},
		{"forget", []string{"consul-addr"}, []string{"node", "group"}},
		{"fleetlock", []string{"listen", "reboot-deadline"}, []string{"node", "group", "reboot-command"}},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			r := runCLI(t, nil, tt.command, "-h")
			if r.code != 0 {
				t.Fatalf("help: %s", r)
			}
			offered := map[string]bool{}
			for _, line := range strings.Split(r.stdout, "\n") {
				if name, ok := strings.CutPrefix(line, "  -"); ok {
					name, _, _ = strings.Cut(name, " ")
					offered[name] = true
				}
			}
			for _, f := range tt.has {
				if !offered[f] {
					t.Errorf("rebootmgr %s -h lacks --%s:\n%s", tt.command, f, r.stdout)
				}
			}
			for _, f := range tt.lacks {
				if offered[f] {
					t.Errorf("rebootmgr %s -h offers --%s, which it does not use", tt.command, f)
				}
			}
			if !strings.Contains(r.stdout, "\nConnection") {
				t.Errorf("rebootmgr %s -h shows no group of flags:\n%s", tt.command, r.stdout)
			}
		})
	}
	// The node's file holds every command's settings: status knows them all, and uses its own.
	file := filepath.Join(t.TempDir(), "rebootmgr")
	writeFile(t, file, "REBOOTMGR_REBOOT_COMMAND=systemctl reboot\nREBOOTMGR_SETTLE=90s\nREBOOTMGR_INTERVAL=1m\nREBOOTMGR_GROUP=compute\nREBOOTMGR_COOLDOWN=soon\n")
	r := runCLI(t, map[string]string{"REBOOTMGR_CONFIG": file}, "status")
	if r.code != exitUsage || !strings.Contains(lastLine(r.stderr), `REBOOTMGR_COOLDOWN="soon" in `+file) {
		t.Fatalf("status did not read its own setting from the shared file, or refused another's: %s", r)
	}
}
