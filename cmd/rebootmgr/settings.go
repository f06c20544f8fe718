package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"
)

// DefaultConfigFile is the configuration file every command reads: the one the package
// installs, which the daemon's unit also reads (EnvironmentFile), so that a command an operator
// runs judges the node exactly as its daemon does. REBOOTMGR_CONFIG names another ("" for none).
const DefaultConfigFile = "/etc/default/rebootmgr"

// env is the process environment and the configuration file, injected so tests set them per run.
type env struct {
	lookup func(string) (string, bool)
	// environ lists the environment as NAME=VALUE (nil: the names are not looked at).
	environ func() []string
	// hostname is this machine's host name (nil: os.Hostname).
	hostname func() (string, error)
	// file holds the configuration file's settings, read once; path is where it was read
	// from ("" when none was), lines the line of each name's first setting.
	file  map[string]string
	path  string
	lines map[string]int
}

func (e env) get(name string) string {
	v, _ := e.lookup(name)
	return v
}

// setting is a setting's value and where it came from: the environment wins over the
// configuration file.
func (e env) setting(name string) (value, source string, ok bool) {
	if v, ok := e.lookup(name); ok {
		return v, "environment", true
	}
	if v, ok := e.file[name]; ok {
		return v, e.path, true
	}
	return "", "", false
}

// without is e with names unset, in the environment and in the configuration file alike.
func (e env) without(names ...string) env {
	lookup := e.lookup
	e.lookup = func(k string) (string, bool) {
		if slices.Contains(names, k) {
			return "", false
		}
		return lookup(k)
	}
	file := make(map[string]string, len(e.file))
	for k, v := range e.file {
		if !slices.Contains(names, k) {
			file[k] = v
		}
	}
	e.file = file
	return e
}

// withConfigFile reads the configuration file: DefaultConfigFile, or REBOOTMGR_CONFIG. The
// default one may be missing (no package installed); one named and missing, or a line that is
// not NAME=VALUE, is an error that names the file and the line.
func (e env) withConfigFile() (env, error) {
	path, named := e.lookup("REBOOTMGR_CONFIG")
	if !named {
		path = DefaultConfigFile
	}
	if path == "" {
		return e, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("%w: configuration file: %v", errUsage, err)
	}
	defer f.Close()
	e.file, e.path, e.lines = map[string]string{}, path, map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(strings.TrimPrefix(name, "export "))
		if !ok || name == "" || strings.ContainsAny(name, " \t\"'") {
			return e, fmt.Errorf("%w: %s:%d: want NAME=VALUE, found %q", errUsage, path, n, line)
		}
		value, err := unquote(strings.TrimSpace(value))
		if err != nil {
			return e, fmt.Errorf("%w: %s:%d: %s: %v", errUsage, path, n, name, err)
		}
		e.file[name] = value
		if e.lines[name] == 0 {
			e.lines[name] = n
		}
	}
	if err := sc.Err(); err != nil {
		return e, fmt.Errorf("configuration file %s: %w", path, err)
	}
	return e, nil
}

// unquote takes the quotes off a value as systemd's EnvironmentFile= does: "..." (with
// backslash escapes) or '...'.
func unquote(v string) (string, error) {
	switch {
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		return strconv.Unquote(v)
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1], nil
	case strings.ContainsAny(v, `"'`) && (v[0] == '"' || v[0] == '\''):
		return "", errors.New("a quote that is not closed")
	}
	return v, nil
}

// consulSettings are the Consul client's settings that the configuration file may hold (the
// daemon's unit passes them in its environment; other commands take them from the file when
// their environment lacks them).
func consulSettings() map[string]func(cfg *api.Config, v string) {
	return map[string]func(cfg *api.Config, v string){
		"CONSUL_HTTP_ADDR":       func(cfg *api.Config, v string) { cfg.Address = v },
		"CONSUL_HTTP_TOKEN":      func(cfg *api.Config, v string) { cfg.Token = v },
		"CONSUL_HTTP_TOKEN_FILE": func(cfg *api.Config, v string) { cfg.TokenFile = v },
		"CONSUL_CACERT":          func(cfg *api.Config, v string) { cfg.TLSConfig.CAFile = v },
		"CONSUL_CAPATH":          func(cfg *api.Config, v string) { cfg.TLSConfig.CAPath = v },
		"CONSUL_CLIENT_CERT":     func(cfg *api.Config, v string) { cfg.TLSConfig.CertFile = v },
		"CONSUL_CLIENT_KEY":      func(cfg *api.Config, v string) { cfg.TLSConfig.KeyFile = v },
		"CONSUL_TLS_SERVER_NAME": func(cfg *api.Config, v string) { cfg.TLSConfig.Address = v },
		"CONSUL_HTTP_SSL": func(cfg *api.Config, v string) {
			if on, err := strconv.ParseBool(v); err == nil && on {
				cfg.Scheme = "https"
			}
		},
	}
}

// applyConsulFile gives cfg the Consul settings of the configuration file that the
// environment does not set; a token the environment gives, in either form, keeps the file's
// out (see tokenSource).
func (e env) applyConsulFile(cfg *api.Config) {
	tokenInEnv := e.tokenInEnv()
	for name, set := range consulSettings() {
		if _, inEnv := e.lookup(name); inEnv {
			continue
		}
		if tokenInEnv && (name == tokenName || name == tokenFileName) {
			continue
		}
		if v, ok := e.file[name]; ok {
			set(cfg, v)
		}
	}
}
