package fleetlock

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
)

// A host's id names it in the lock, the fleet's holders, the queue and the history, as a
// node's name names a node, and the daemon of a node reads its own entries by its name. These
// are the rules that keep a host and a node apart: a host takes no place under the name of a
// node that rebootmgr's daemon reboots, and its entries say that a FleetLock request took them
// (see lock.Holder.FleetLock), so that a daemon never takes them for its own. And a host's id
// belongs to one group at a time: a host that holds a place, or waits in the queue, of one
// group asks for no place in another, and a host whose Consul node names its group (node meta
// rebootmgr-group) asks in that group only. Tokens are a group's, not a host's: with these
// rules a client with one group's token cannot take the place of another group's host that
// holds or waits, and a host refused so is told which group holds its id.

// mayAsk refuses a pre-reboot that may not ask for a place at all, before the lock is read: an
// id too long (see MaxHostID), a group no operator made (see known), an id that is the name of
// a node rebootmgr's daemon reboots, or of a node of another group.
func (l *Locks) mayAsk(ctx context.Context, st *store.Consul, host, group string) error {
	if len(host) > MaxHostID {
		return &Refusal{Kind: KindBadRequest, Value: fmt.Sprintf("client_params.id is %d characters long: an id that asks for a place here is at most %d (Zincati's is 32)", len(host), MaxHostID)}
	}
	if err := known(ctx, st, group); err != nil {
		return err
	}
	return notANode(ctx, st, host, group)
}

// notANode refuses host when Consul's catalog has a node of that name that runs rebootmgr's
// daemon (its service store.DaemonService is registered there, running or not): that node's
// reboots are its daemon's, and a host of the same name would be taken for it (its daemon
// reading the host's entry as its own reboot, its min reboot interval the host's reboots). A
// node without the daemon is a host's own Consul agent, by which it is judged (see hostHealth);
// one whose node meta names a group other than group is refused too, naming it.
func notANode(ctx context.Context, st *store.Consul, host, group string) error {
	// A service the token may not read may be the daemon's: ErrFiltered.
	n, known, err := st.CatalogEntry(ctx, host)
	if err != nil || !known {
		return err
	}
	if slices.Contains(n.Services, store.DaemonService) {
		return &Refusal{Kind: KindIDInUse, Value: fmt.Sprintf("%s is the name of a node that rebootmgr's daemon reboots: a FleetLock host takes no place under it (give the host an id no such node has)", host)}
	}
	if g := n.Meta[store.GroupMeta]; g != "" && g != group {
		return &Refusal{Kind: KindIDInUse, Value: fmt.Sprintf("%s is a node of group %s (its node meta %s): it asks in that group only, not in %s", host, g, store.GroupMeta, group)}
	}
	return nil
}

// mayTake refuses host, which holds no place in v's group, when it may not take one there
// now: it holds a place in another group, or waits in another group's queue (see
// queuedElsewhere), or its last reboot ended less than the min reboot interval ago.
func (l *Locks) mayTake(ctx context.Context, st *store.Consul, v pipeline.View, host string, now time.Time) error {
	if g, ok := v.Fleet.Group(host); ok && g != v.Group {
		return otherGroup(host, g, "holds a place in")
	}
	if _, queued := v.Queue.Place(host); !queued {
		// Once in this group's queue it was judged when it joined: only a first ask looks.
		g, err := queuedElsewhere(ctx, st, host)
		if err != nil {
			return err
		}
		if g != "" {
			return otherGroup(host, g, "waits in the queue of")
		}
	}
	if l.MinRebootInterval <= 0 {
		return nil
	}
	hl, _, err := st.History(ctx)
	if err != nil {
		return err
	}
	if last, ok := pipeline.LastHostReboot(hl, host); ok && now.Before(last.End.Add(l.MinRebootInterval)) {
		return &Refusal{Kind: KindTooSoon, Value: fmt.Sprintf("%s finished a reboot at %s: the next may start at %s (min reboot interval %s)",
			host, last.End.UTC().Format(time.RFC3339), last.End.Add(l.MinRebootInterval).UTC().Format(time.RFC3339), l.MinRebootInterval)}
	}
	return nil
}

// otherGroup is the refusal of a host that holds or waits in group g.
func otherGroup(host, g, what string) *Refusal {
	return &Refusal{Kind: KindIDInUse, Value: fmt.Sprintf("%s %s group %s: a host's id belongs to one group at a time (it asks in group %s, or an operator frees the id there)", host, what, g, g)}
}

// queuedElsewhere is a group other than st's whose queue host waits in, not blocked (see
// lock.Queue.Ready; "" when none): every group with keys is looked at (see
// store.Consul.OtherQueues), the first by name that holds it answers. An entry blocked (a host
// that let its turn pass, as one that moved to another group does once a place opens there)
// binds the id no more.
func queuedElsewhere(ctx context.Context, st *store.Consul, host string) (string, error) {
	queues, err := st.OtherQueues(ctx)
	if err != nil {
		return "", err
	}
	for _, g := range slices.Sorted(maps.Keys(queues)) {
		if queues[g].Ready(host) {
			return g, nil
		}
	}
	return "", nil
}
