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

func runTrigger(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	reason := fs.String("reason", "", "why the node should reboot")
	fs.Usage = usageFunc(fs, stdout, "rebootmgr trigger [NODE] [--reason TEXT]", `  rebootmgr trigger                     ask this node to reboot
  rebootmgr trigger compute-17 --reason "kernel 6.1.0-27"
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
	key := o.keys.RebootRequired(node)
	value := withReason(*reason, e, time.Now())
	existing, err := o.store.Create(ctx, key, value)
	if errors.Is(err, store.ErrExists) {
		fmt.Fprintf(stdout, "%s was already asked to reboot: %s\n", node, orNone(existing.Value))
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "asked %s to reboot: %s %s\n", node, key, value)
	return nil
}

func runCancel(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	fs.Usage = usageFunc(fs, stdout, "rebootmgr cancel [NODE]", "  rebootmgr cancel compute-17\n")
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
	removed, err := o.store.Remove(ctx, o.keys.RebootRequired(node))
	if err != nil {
		return err
	}
	if !removed.Set {
		fmt.Fprintf(stdout, "%s had no reboot request in Consul (a reboot-required file on the node is not touched)\n", node)
		return nil
	}
	fmt.Fprintf(stdout, "cancelled the reboot request of %s: %s\n", node, orNone(removed.Value))
	return nil
}
