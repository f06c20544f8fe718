package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rebootmgr/rebootmgr/store"
)

func runDisable(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("disable", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	reason := fs.String("reason", "", "why the node must not reboot (recorded with who, where and when)")
	fs.Usage = usageFunc(fs, stdout, "rebootmgr disable [NODE] [--reason TEXT]", `  rebootmgr disable db-3 --reason "disk replacement, ticket 4711"
`)
	force := fs.Bool("force", false, "write even for a node Consul does not know")
	pos, err := parseArgs(fs, args, e, 1)
	if err != nil {
		return err
	}
	o, err := g.operator(stderr)
	if err != nil {
		return err
	}
	node, err := o.node(ctx, pos, g.node)
	if err != nil {
		return err
	}
	if err := o.requireKnown(ctx, node, *force); err != nil {
		return err
	}
	key := o.keys.Disabled(node)
	value := withReason(*reason, e, time.Now())
	existing, err := o.store.Create(ctx, key, value)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%s is already disabled: %s (rebootmgr enable %s first to change the reason)", node, orNone(existing.Value), node)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "disabled %s: %s %s\n", node, key, value)
	return nil
}

func runEnable(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("enable", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	fs.Usage = usageFunc(fs, stdout, "rebootmgr enable [NODE]", "  rebootmgr enable db-3\n")
	pos, err := parseArgs(fs, args, e, 1)
	if err != nil {
		return err
	}
	o, err := g.operator(stderr)
	if err != nil {
		return err
	}
	node, err := o.node(ctx, pos, g.node)
	if err != nil {
		return err
	}
	removed, err := o.store.Remove(ctx, o.keys.Disabled(node))
	if err != nil {
		return err
	}
	if !removed.Set {
		fmt.Fprintf(stdout, "%s was not disabled\n", node)
		return nil
	}
	fmt.Fprintf(stdout, "enabled %s: removed %s\n", node, orNone(removed.Value))
	return nil
}
