package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
)

// expected is how long a holder may stay in a phase before an operator may unlock it without
// --force: preparing covers the tasks and the settle, rebooting the boot, finishing the
// post-boot tasks and health.
func expected(p lock.Phase) time.Duration {
	if p == lock.Rebooting {
		return 20 * time.Minute
	}
	return 30 * time.Minute
}

func runUnlock(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("unlock", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	force := fs.Bool("force", false, "unlock even though the holder is alive and within its phase's expected time")
	fs.Usage = usageFunc(fs, stdout, "rebootmgr unlock NODE [--group GROUP] [--force]", `  rebootmgr unlock compute-17           release the lock of a node that will not come back
`)
	pos, err := parseArgs(fs, args, e, 1)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: unlock needs the NODE whose lock to release", errUsage)
	}
	node := pos[0]
	if err := nodeArg(node); err != nil {
		return err
	}
	o, err := g.operator(stderr)
	if err != nil {
		return err
	}
	if o.store.Group, err = o.groupOf(ctx, node, g.group); err != nil {
		return err
	}
	rec, _, err := o.store.Lock(ctx)
	if err != nil {
		return err
	}
	h, ok := rec.Holder(node)
	if !ok {
		return fmt.Errorf("%s does not hold the reboot lock (holders: %d)", node, len(rec.Holders))
	}
	if !*force {
		alive, err := nodeAlive(ctx, o.client, node)
		if err != nil {
			return err
		}
		since := time.Since(h.Updated)
		if h.Updated.IsZero() {
			since = time.Since(h.Since)
		}
		if alive && since < expected(h.Phase) {
			return fmt.Errorf("refusing to unlock %s: it is alive in Consul and has been %s for %s, within the %s expected; it may still be working (use --force if you are sure)",
				node, h.Phase, since.Round(time.Second), expected(h.Phase))
		}
	}
	removed, err := o.store.Unlock(ctx, node)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "released the reboot lock of %s: phase %s since %s, boot id %q (its maintenance mode, if any, is left to the node)\n",
		removed.Node, removed.Phase, removed.Since.UTC().Format(time.RFC3339), removed.BootID)
	return nil
}

// nodeAlive reports whether Consul sees node's agent alive (its serfHealth passing).
func nodeAlive(ctx context.Context, client *api.Client, node string) (bool, error) {
	checks, _, err := client.Health().Node(node, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("read health of node %s: %w", node, err)
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" {
			return c.Status == api.HealthPassing, nil
		}
	}
	return false, nil
}
