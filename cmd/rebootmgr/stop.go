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

func runStop(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	reason := fs.String("reason", "", "why the fleet stops (recorded with who, where and when)")
	fs.Usage = usageFunc(fs, stdout, "rebootmgr stop [--reason TEXT]", `  rebootmgr stop --reason "galera upgrade, until 14:00"
`)
	if err := parse(fs, args, e); err != nil {
		return err
	}
	o, err := g.operator(stderr)
	if err != nil {
		return err
	}
	value := withReason(*reason, e, time.Now())
	existing, err := o.store.Create(ctx, o.keys.Stop(), value)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("the fleet is already stopped: %s (rebootmgr resume first to change the reason)", orNone(existing.Value))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stopped the fleet: %s %s\n", o.keys.Stop(), value)
	return nil
}

func runResume(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	fs.Usage = usageFunc(fs, stdout, "rebootmgr resume", "  rebootmgr resume\n")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	o, err := g.operator(stderr)
	if err != nil {
		return err
	}
	removed, err := o.store.Remove(ctx, o.keys.Stop())
	if err != nil {
		return err
	}
	if !removed.Set {
		fmt.Fprintln(stdout, "the fleet was not stopped")
		return nil
	}
	fmt.Fprintf(stdout, "resumed the fleet: removed %s %s\n", o.keys.Stop(), orNone(removed.Value))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}
