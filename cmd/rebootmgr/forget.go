package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/rebootmgr/rebootmgr/store"
)

func runForget(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, g := connFlagSet("forget")
	fs.Usage = fs.usage(stdout, "rebootmgr forget NODE [SERVICE]", `  rebootmgr forget db-4 cassandra       db-4 no longer runs cassandra: stop counting it as failing
  rebootmgr forget db-4                 db-4 is gone for good: forget it for every service
`)
	pos, err := parseArgs(fs.FlagSet, args, e, 2)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: forget needs a NODE", errUsage)
	}
	node, service := pos[0], ""
	if len(pos) == 2 {
		service = pos[1]
	}
	// Any name Consul may have had: a member's key escapes what cannot be a key's segment.
	if node == "" || strings.IndexFunc(node, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: node name %q: empty, or with control characters", errUsage, node)
	}
	if service != "" {
		if err := store.ValidService(service); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	forgotten, err := o.store.Forget(ctx, node, service)
	if len(forgotten) > 0 {
		fmt.Fprintf(stdout, "forgot %s as a member of %s (%s): it no longer counts as a failing instance\n", node, strings.Join(forgotten, ", "), stamp(e, time.Now()))
	}
	if err != nil {
		return err
	}
	if len(forgotten) == 0 {
		what := "any service"
		if service != "" {
			what = service
		}
		fmt.Fprintf(stdout, "%s was not remembered as a member of %s: nothing to forget\n", node, what)
	}
	return nil
}
