package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/store"
)

func runHistory(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, g := historyFlagSet()
	fs.Usage = fs.usage(stdout, "rebootmgr history [NODE] [--group GROUP] [--json]", `  rebootmgr history                     the default group's last reboots
  rebootmgr history compute-17 --group compute
`)
	pos, err := parseArgs(fs.FlagSet, args, e, 1)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		if err := nodeArg(pos[0]); err != nil {
			return err
		}
	}
	return g.inDatacenters(ctx, e, stdout, g.json, func(stdout io.Writer) error { return showHistory(ctx, e, g, pos, stdout, stderr) })
}

// showHistory prints the history of one datacenter's group (see connFlags.inDatacenters).
func showHistory(ctx context.Context, e env, g *historyFlags, pos []string, stdout, stderr io.Writer) error {
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	group := g.group
	if group == "" {
		group = store.DefaultGroup
	}
	o = o.inGroup(group)
	l, _, err := o.store.History(ctx)
	if err != nil {
		return err
	}
	entries := []history.Entry{}
	for _, en := range l.Entries {
		if len(pos) == 0 || en.Node == pos[0] {
			entries = append(entries, en)
		}
	}
	if len(entries) == 0 {
		// Nothing recorded: say whether there is nothing to record, or nothing of that name.
		if err := o.requireGroup(ctx, group, "no history to show", false); err != nil {
			return err
		}
		if len(pos) > 0 {
			if known, _, err := o.store.CatalogNode(ctx, pos[0]); err != nil {
				return err
			} else if !known {
				return fmt.Errorf("node %s is not in consul's catalog and no reboot of it is recorded in group %s (a typo?)", pos[0], group)
			}
		}
	}
	if g.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if len(entries) == 0 {
		if len(pos) > 0 {
			fmt.Fprintf(stdout, "no reboot of %s recorded in group %s\n", pos[0], group)
		} else {
			fmt.Fprintf(stdout, "group %s has no history: no reboot recorded yet\n", group)
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "END\tNODE\tOUTCOME\tTOOK\tTRIGGERED BY\tDETAIL")
	for _, en := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", en.End.UTC().Format(time.RFC3339), en.Node, en.Outcome, en.Duration().Round(time.Second), dash(en.TriggeredBy), dash(en.Detail))
	}
	return tw.Flush()
}

// historyFlags are history's flags: how to reach Consul, the group, and --json.
type historyFlags struct {
	connFlags
	group string
	json  bool
}

func historyFlagSet() (*flagSet, *historyFlags) {
	var f historyFlags
	fs := newFlagSet("history")
	fs.group(connGroup, func(g *flag.FlagSet) {
		f.connFlags.register(g)
		registerGroup(g, &f.group, "the group whose reboots to show (default: "+store.DefaultGroup+")")
		f.connFlags.registerDatacenters(g, "history")
	})
	fs.group("Output", func(g *flag.FlagSet) { g.BoolVar(&f.json, "json", false, "print the entries as JSON") })
	return fs, &f
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
