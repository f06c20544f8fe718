package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// configFlagSet are the settings of this node: the daemon's flags, and the one of reboot's runs
// that is a setting.
func configFlagSet() *flagSet {
	fs, _ := daemonFlagSet()
	reboot, _ := rebootFlagSet()
	f := reboot.Lookup("check-triggers")
	fs.group("rebootmgr reboot", func(g *flag.FlagSet) { g.Var(f.Value, f.Name, f.Usage) })
	return fs
}

func runConfig(_ context.Context, args []string, e env, stdout, _ io.Writer) error {
	fs := configFlagSet()
	fs.Usage = fs.usage(stdout, "rebootmgr config [flags]", `  rebootmgr config                      the settings every command and the daemon use here, and where each comes from
  rebootmgr config --group compute      the same, with a flag given
`)
	if err := parse(fs.FlagSet, args, e); err != nil {
		return err
	}
	// What the command line gave (fs.Visit would also name what parse took from the
	// environment and the file).
	cl := configFlagSet()
	given := map[string]bool{}
	if cl.Parse(args) == nil {
		cl.Visit(func(f *flag.Flag) { given[f.Name] = true })
	}
	if e.path != "" {
		fmt.Fprintf(stdout, "configuration file: %s\n", e.path)
	} else {
		fmt.Fprintln(stdout, "configuration file: none")
	}
	fs.VisitAll(func(f *flag.Flag) {
		source := "default"
		if given[f.Name] {
			source = "command line"
		} else if _, from, ok := e.setting(envName(f.Name)); ok {
			source = from
		}
		fmt.Fprintf(stdout, "%-22s %-40s (%s)\n", "--"+f.Name, quoteEmpty(oneLineValue(f.Value.String())), source)
	})
	var consul []string
	for name := range consulSettings() {
		if v, from, ok := e.setting(name); ok {
			if strings.Contains(name, "TOKEN") && !strings.HasSuffix(name, "_FILE") {
				v = "(set, not shown)"
			}
			consul = append(consul, fmt.Sprintf("%-22s %-40s (%s)", name, quoteEmpty(v), from))
		}
	}
	sort.Strings(consul)
	for _, line := range consul {
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// oneLineValue keeps a setting on its line: a list of several lines (the reboot-required
// commands) is shown quoted, as the configuration file takes it.
func oneLineValue(s string) string {
	if strings.Contains(s, "\n") {
		return strconv.Quote(s)
	}
	return s
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
