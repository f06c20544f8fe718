package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/rebootmgr/rebootmgr/store"
)

func runLimit(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("limit", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	fs.Usage = usageFunc(fs, stdout, "rebootmgr limit GROUP [N]", `  rebootmgr limit compute 5             let five compute nodes reboot at once
  rebootmgr limit default               show the fleet-wide group's limit
`)
	pos, err := parseArgs(fs, args, e, 2)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: limit needs a GROUP (%q is the fleet-wide one)", errUsage, store.DefaultGroup)
	}
	group := pos[0]
	if err := store.ValidGroup(group); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	o.store.Group = group
	key := o.keys.GroupLimit(group)
	if len(pos) == 1 {
		n, err := o.store.Limit(ctx)
		if err != nil {
			return err
		}
		set, err := o.store.Flag(ctx, key)
		if err != nil {
			return err
		}
		switch known, err := o.store.GroupKnown(ctx, group); {
		case err != nil:
			return err
		case !known:
			fmt.Fprintf(stdout, "group %s: %d at a time (the default; no node and no key knows group %s yet: a typo?)\n", group, n, group)
		case !set.Set:
			fmt.Fprintf(stdout, "group %s: %d at a time (the default: no limit set)\n", group, n)
		default:
			fmt.Fprintf(stdout, "group %s: %d at a time\n", group, n)
		}
		return nil
	}
	n, err := store.ParseLimit(pos[1])
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	current, err := o.store.Flag(ctx, key)
	if err != nil {
		return err
	}
	if err := o.store.SetLimit(ctx, n, current.Index); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "group %s: %d at a time (%s)\n", group, n, key)
	return nil
}
