package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/notify"
	"github.com/rebootmgr/rebootmgr/store"
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
	fs, g := unlockFlagSet()
	force, cancelRequest, endMaintenance := &g.force, &g.cancelRequest, &g.endMaintenance
	fs.Usage = fs.usage(stdout, "rebootmgr unlock NODE [--group GROUP] [--force] [--cancel-request] [--end-maintenance]", `  rebootmgr unlock compute-17           release the lock of a node that will not come back
  rebootmgr unlock db-3 --force --cancel-request --end-maintenance
                                        on db-3, after a reboot that did not happen: give everything back
`)
	pos, err := parseArgs(fs.FlagSet, args, e, 1)
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
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	n, err := g.notifier(o.client, node, "", o.store.Logger)
	if err != nil {
		return err
	}
	if g.group != "" {
		if err := o.requireGroup(ctx, g.group, "nothing to unlock there", false); err != nil {
			return err
		}
	}
	if o.store.Group, err = o.holderGroup(ctx, node, g.group); err != nil {
		return err
	}
	judge := func(h lock.Holder) error {
		if *force {
			return nil
		}
		return mayUnlock(ctx, o.store, h, time.Now())
	}
	removed, err := o.store.Unlock(ctx, node, judge)
	if err != nil {
		return err
	}
	if removed.Phase == "" {
		fmt.Fprintf(stdout, "released %s's place in the fleet's holders of group %s (the group's record no longer held it)\n", removed.Node, o.store.Group)
		return nil
	}
	fmt.Fprintf(stdout, "released the reboot lock of %s: phase %s since %s, boot id %q\n",
		removed.Node, removed.Phase, removed.Since.UTC().Format(time.RFC3339), removed.BootID)
	now := time.Now()
	entry := history.Entry{
		Node: node, Start: removed.Since, End: now.UTC(), Outcome: history.Unlocked, TriggeredBy: removed.TriggeredBy,
		Detail: fmt.Sprintf("released in phase %s %s", removed.Phase, stamp(e, now)),
	}
	if !removed.RebootStarted.IsZero() {
		entry.Start = removed.RebootStarted
	}
	if _, err := o.store.AppendHistory(ctx, entry); err != nil {
		// The lock is released already; the history is the record, not the gate.
		fmt.Fprintf(stderr, "the unlock could not be recorded in the history of group %s: %v\n", o.store.Group, err)
	}
	n.Group = o.store.Group
	n.Tell(ctx, notify.KindUnlocked, entry.Detail)
	return o.leftBehind(ctx, node, *cancelRequest, *endMaintenance, stdout)
}

// unlockFlags are unlock's flags: how to reach Consul, the holder's group, and what to force
// or give back.
type unlockFlags struct {
	connFlags
	notifyFlags
	group                                string
	force, cancelRequest, endMaintenance bool
}

func unlockFlagSet() (*flagSet, *unlockFlags) {
	var f unlockFlags
	fs := newFlagSet("unlock")
	fs.group(connGroup, func(g *flag.FlagSet) {
		f.connFlags.register(g)
		registerGroup(g, &f.group, "the group whose lock NODE holds (default: the one the fleet's holders name for it, else its node meta "+store.GroupMeta+")")
	})
	fs.group("What to release", func(g *flag.FlagSet) {
		g.BoolVar(&f.force, "force", false, "unlock even though the holder is within its phase's expected time (and, preparing, alive)")
		g.BoolVar(&f.cancelRequest, "cancel-request", false, "also withdraw the node's reboot request, which would start it again at once")
		g.BoolVar(&f.endMaintenance, "end-maintenance", false, "also end the maintenance mode rebootmgr started (only on the node itself: maintenance belongs to its agent)")
	})
	fs.group(notifyGroup, f.notifyFlags.register)
	return fs, &f
}

// leftBehind says, after an unlock, what the node's reboot left that an operator may want gone:
// a reboot request still set (the node would start again at once) and maintenance mode; and
// clears each when asked.
func (o *operator) leftBehind(ctx context.Context, node string, cancel, endMaint bool, stdout io.Writer) error {
	req, err := o.store.Trigger(ctx, node)
	if err != nil {
		return err
	}
	switch {
	case req.Set && cancel:
		if err := o.store.RemoveAt(ctx, o.keys.RebootRequired(node), req.Index); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "withdrew the reboot request of %s (%s)\n", node, o.keys.RebootRequired(node))
	case req.Set:
		fmt.Fprintf(stdout, "left behind: a reboot request (%s): %s starts again as soon as it can; --cancel-request (or rebootmgr cancel %s) withdraws it\n", o.keys.RebootRequired(node), node, node)
	}
	reason, inMaint, err := o.store.NodeMaintenance(ctx, node)
	if err != nil || !inMaint {
		return err
	}
	local, _ := store.NodeName(ctx, o.client)
	switch {
	case endMaint && local == node:
		if err := o.store.EndMaintenance(ctx, node); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ended the maintenance mode of %s\n", node)
	case endMaint:
		// Everything else is done: what is left is said, with how to end it.
		return fmt.Errorf("done but one thing: %s is still in maintenance mode (%s), which only its own agent can end (the local agent is %s's): on %s, run consul maint -disable (its token needs node:write on %s, as the shipped operator policy grants)", node, reason, cmp.Or(local, "no node"), node, node)
	default:
		fmt.Fprintf(stdout, "left behind: %s is in maintenance mode (%s); on %s, --end-maintenance (or consul maint -disable) ends it\n", node, reason, node)
	}
	return nil
}

// holderGroup is the group whose lock node holds: the one given, else the one the fleet's
// holders name (a node gone from the catalog is what unlock is for, and the catalog no longer
// says its group), else its group by the catalog.
func (o *operator) holderGroup(ctx context.Context, node, given string) (string, error) {
	if given != "" {
		return o.groupOf(ctx, node, given)
	}
	v, err := o.store.View(ctx)
	if err != nil {
		return "", err
	}
	if g, ok := v.Fleet.Group(node); ok {
		return g, nil
	}
	return o.groupOf(ctx, node, "")
}

// mayUnlock judges, without --force, whether h may be released at now. A holder still within
// its phase's expected time may be working: rebooting or finishing, it is refused whether its
// node is alive or not (its agent is down while it boots), unless its daemon says that the node
// did not reboot from the boot the entry names; preparing, it is refused while its node is
// alive.
func mayUnlock(ctx context.Context, st *store.Consul, h lock.Holder, now time.Time) error {
	last := h.Updated
	if last.IsZero() {
		last = h.Since
	}
	in := now.Sub(last)
	limit := expected(h.Phase)
	if in >= limit {
		return nil
	}
	switch h.Phase {
	case lock.Rebooting:
		// Its daemon, back on the same boot, knows that the reboot did not happen: nothing is on
		// its way down.
		d, ok, err := st.Daemon(ctx, h.Node)
		if err != nil {
			return err
		}
		if ok && d.State == fleet.DaemonNeedsOperator && gate.SaysNotRebooted(d.Status, h.BootID) {
			return nil
		}
		return fmt.Errorf("refusing to unlock %s: it has been rebooting for %s, within the %s expected; a rebooting node's agent is down until it is back, so that Consul sees it down or gone says nothing (use --force if you are sure it will not come back)",
			h.Node, in.Round(time.Second), limit)
	case lock.Finishing:
		return fmt.Errorf("refusing to unlock %s: it has been finishing its reboot for %s, within the %s expected; its post-boot tasks and health checks may still be running (use --force if you are sure)",
			h.Node, in.Round(time.Second), limit)
	}
	alive, err := st.NodeAlive(ctx, h.Node)
	if err != nil {
		return err
	}
	if alive {
		return fmt.Errorf("refusing to unlock %s: it is alive in Consul and has been %s for %s, within the %s expected; it may still be working (use --force if you are sure)",
			h.Node, h.Phase, in.Round(time.Second), limit)
	}
	return nil
}
