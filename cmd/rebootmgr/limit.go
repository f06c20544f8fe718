package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

func runLimit(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, lf := limitFlagSet()
	g := &lf.connFlags
	fs.Usage = fs.usage(stdout, "rebootmgr limit GROUP [N|auto|P%] [--per-zone N] [--force] | --remove", `  rebootmgr limit compute 5             let five compute nodes reboot at once
  rebootmgr limit compute auto          as many as the quorum rules of their services allow
  rebootmgr limit compute 10%           a tenth of the group's nodes (at least one)
  rebootmgr limit compute auto --per-zone 2
                                        two of one zone at a time, zone by zone
  rebootmgr limit default               show the fleet-wide group's limit
  rebootmgr limit compute --remove      back to the default: one node at a time
`)
	pos, err := parseArgs(fs.FlagSet, args, e, 2)
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
	return g.inDatacenters(ctx, e, stdout, false, func(stdout io.Writer) error { return lf.limitIn(ctx, e, group, pos, stdout, stderr) })
}

// limitIn shows or sets the group's limit in one datacenter (see connFlags.inDatacenters).
func (lf *limitFlags) limitIn(ctx context.Context, e env, group string, pos []string, stdout, stderr io.Writer) error {
	g, perZone := &lf.connFlags, &lf.perZone
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	o = o.inGroup(group)
	key := o.keys.GroupLimit(group)
	if lf.remove {
		if len(pos) > 1 || *perZone != 0 || lf.force {
			return fmt.Errorf("%w: --remove takes only the GROUP: rebootmgr limit %s --remove", errUsage, group)
		}
		return o.removeLimit(ctx, group, stdout)
	}
	if len(pos) == 1 {
		if *perZone != 0 {
			return fmt.Errorf("%w: --per-zone goes with a limit: rebootmgr limit %s N|auto|P%% --per-zone %d", errUsage, group, *perZone)
		}
		return o.showLimit(ctx, group, stdout)
	}
	if *perZone < 0 {
		return fmt.Errorf("%w: --per-zone %d: want 1 or more (0: no zone bound)", errUsage, *perZone)
	}
	l, err := lock.ParseLimit(pos[1])
	if err != nil || l.PerZone != 0 {
		return fmt.Errorf("%w: limit %q: want a whole number of at least 1, auto, or a percentage such as 10%% (and --per-zone N for zones)", errUsage, pos[1])
	}
	l.PerZone = *perZone
	if err := o.requireGroup(ctx, group, "nothing written; --force sets the limit anyway, and so makes the group known", lf.force); err != nil {
		return err
	}
	current, err := o.store.Flag(ctx, key)
	if err != nil {
		return err
	}
	if err := o.store.SetLimit(ctx, l, current.Index); err != nil {
		return err
	}
	nodes, err := o.store.GroupNodes(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "group %s: %s (%s = %q)\n", group, l.Describe(nodes), key, l.String())
	return nil
}

// limitFlags are limit's flags: how to reach Consul, and how to set the limit.
type limitFlags struct {
	connFlags
	perZone int
	force   bool
	remove  bool
}

func limitFlagSet() (*flagSet, *limitFlags) {
	var f limitFlags
	fs := newFlagSet("limit")
	fs.group("Connection", func(g *flag.FlagSet) { f.connFlags.register(g); f.connFlags.registerDatacenters(g, "group's limit") })
	fs.group("What to set", f.register)
	return fs, &f
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.force, "force", false, "set the limit even of a group nothing knows yet (no node with its node meta "+store.GroupMeta+", no key of it)")
	fs.BoolVar(&l.remove, "remove", false, "remove the group's limit: it is then the default, one node at a time")
	fs.IntVar(&l.perZone, "per-zone", 0, "also at most this many of one zone (node meta "+store.ZoneMeta+") at once, one zone at a time (0: no zone bound)")
}

// showLimit prints the group's limit, saying when it is the default and when nothing knows the
// group.
func (o *operator) showLimit(ctx context.Context, group string, stdout io.Writer) error {
	l, err := o.store.Limit(ctx)
	if err != nil {
		return err
	}
	nodes, err := o.store.GroupNodes(ctx)
	if err != nil {
		return err
	}
	set, err := o.store.Flag(ctx, o.keys.GroupLimit(group))
	if err != nil {
		return err
	}
	switch known, err := o.store.GroupKnown(ctx, group); {
	case errors.Is(err, store.ErrFiltered):
		fmt.Fprintf(stdout, "group %s: %s (this token cannot see whether group %s exists: %v)\n", group, l.Describe(nodes), group, err)
	case err != nil:
		return err
	case !known:
		fmt.Fprintf(stdout, "group %s: %s (the default; no node and no key knows group %s yet: a typo?)\n", group, l.Describe(nodes), group)
	case !set.Set:
		fmt.Fprintf(stdout, "group %s: %s (the default: no limit set)\n", group, l.Describe(nodes))
	default:
		fmt.Fprintf(stdout, "group %s: %s\n", group, l.Describe(nodes))
	}
	return nil
}

// removeLimit deletes the group's limit key, if it is there and unchanged since it was read: the
// group's limit is then the default, one node at a time. Nodes that hold the lock keep it; no
// further one starts while the group holds as many as that.
func (o *operator) removeLimit(ctx context.Context, group string, stdout io.Writer) error {
	key := o.keys.GroupLimit(group)
	removed, err := o.store.Remove(ctx, key)
	if err != nil {
		return err
	}
	if !removed.Set {
		if err := o.requireGroup(ctx, group, "nothing removed", false); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group %s had no limit set: %s (the default)\n", group, lock.One.Describe(0))
		return nil
	}
	fmt.Fprintf(stdout, "group %s: %s (the default; removed %s = %q)\n", group, lock.One.Describe(0), key, removed.Value)
	return nil
}
