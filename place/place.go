// Package place holds the rules of a place in a group's reboot lock, judged on one View of the
// locks: who may take a place, give it back or go on with it, who goes first, who is told that
// a place opened, and what a holder past its deadline does to its group. The pipeline takes and
// gives back its node's place with them, and so does anything else that hands out places in the
// same lock (the FleetLock server, an operator's unlock): one set of rules, whoever asks. It
// consumes a small interface of the store (Locks) and of health (Health).
package place

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// Flag is a key that means something by existing: the stop flag, a node's disabled mark, a
// node's reboot request. Value is what it holds (a reason, often), Index its ModifyIndex, Key
// the key it was read from ("" when not known).
type Flag struct {
	Set   bool
	Value string
	Index uint64
	Key   string
}

// Locks are the group's lock record and the fleet's holders, read at one moment and written
// against that read.
type Locks interface {
	// Lock reads the lock record and its index (0: no record).
	Lock(ctx context.Context) (lock.Record, uint64, error)
	// View reads the stop flags, the group's lock record and limit, the fleet's holders and
	// the Python rebootmgr's keys at one moment.
	View(ctx context.Context) (View, error)
	// Commit writes ch if nothing v holds changed since it was read; false (nothing written)
	// if something did. It returns true with ErrUntold when it wrote ch without telling the
	// nodes ch woke.
	Commit(ctx context.Context, v View, ch Change) (bool, error)
	// ChangeClaims writes the fleet's claims of room as change makes them from the record as
	// read, with check-and-set (read again when another node wrote it meanwhile).
	ChangeClaims(ctx context.Context, change func(lock.Claims) (lock.Claims, error)) error
}

// Health judges the services a node's reboot depends on.
type Health interface {
	// Check judges node's services; every node in down counts as a failing instance (the
	// value says why), whatever its checks say.
	Check(ctx context.Context, node string, down map[string]string) (health.Report, error)
	// Ruled says whether node (another node: a holder) runs a service with a rule over the
	// fleet (see health.FleetRule).
	Ruled(ctx context.Context, node string) (bool, error)
}

// ErrHeldElsewhere means the fleet's holders give the node a place in another group's lock: a
// node holds one place at most. It is no gate of a run (an operator must unlock the old place),
// so a run that meets it ends as an operational error.
var ErrHeldElsewhere = errors.New("holds a place in another group's lock")

// AcquireIn is the change that gives h.Node a place in v as the entry h (phase, times and what
// asked for it as given). The place is taken only in a View in which the node holds no place in
// another group, the lock has room, no Python rebootmgr holds it, no stop flag is set, and the
// node's services keep their quorum with every reboot in flight anywhere in the fleet counted as
// failing (see Admit). Written with Locks.Commit against that very View (see ChangeLock), two
// places are never taken on views that miss each other. A node that holds a place already keeps
// its entry as it is. The turns of the queue are judged at now, the clock as read: h.Since is
// what is written, in UTC, without the monotonic reading the turns are judged by (see
// lock.Sightings).
func AcquireIn(ctx context.Context, health Health, log *slog.Logger, v View, h lock.Holder, now time.Time, gate string) (Change, error) {
	if g, ok := v.Fleet.Group(h.Node); ok && g != v.Group {
		return Change{}, &ending.Error{Gate: ErrHeldElsewhere, Msg: fmt.Sprintf("the fleet's holders say %s holds a place in group %s's lock, and it is now in group %s: it takes no second place; if that reboot is over, rebootmgr unlock %s --group %s", h.Node, g, v.Group, h.Node, g)}
	}
	if v.Limit.PerZone == 0 {
		// A holder's zone is kept only where it counts.
		h.Zone = ""
	}
	ruled, err := admit(ctx, health, log, v, h, gate, now)
	if err != nil {
		return Change{}, err
	}
	rec, err := v.Lock.AcquireWithin(h, v.Limit, v.GroupNodes, ruled)
	if err != nil {
		return Change{}, err
	}
	fleet, err := v.Fleet.Bounded(h.Node, v.Group)
	if err != nil {
		return Change{}, ending.Wrap(ending.ErrLockHeld, err, "cannot take the reboot lock")
	}
	ch := Change{Lock: rec, Fleet: &fleet}
	if q := v.Queue.Served(h.Node, now, zoneAdmits(v), v.Sightings); !q.Equal(v.Queue) {
		ch.Queue = &q
	}
	return ch, nil
}

// ChangeQueue changes the group's queue alone, against one read of it (the lock is checked, not
// written: see Locks.Commit).
func ChangeQueue(ctx context.Context, locks Locks, log *slog.Logger, change func(lock.Queue) lock.Queue) error {
	_, _, err := ChangeLock(ctx, locks, log, func(v View) (Change, error) {
		q := change(v.Queue)
		return Change{Lock: v.Lock, Queue: &q}, nil
	})
	return err
}

// ReleaseIn is the change that gives node's place in v back at now, in the group's record and
// the fleet's (a place the fleet's record gives it in another group stays); the group's queue
// notes that a place opened (see lock.QueueGrace).
func ReleaseIn(v View, node string, now time.Time) Change {
	fleet := v.Fleet.Without(node, v.Group)
	q := v.Queue.Leave(node)
	q.Freed = now.UTC()
	return Change{Lock: v.Lock.Release(node), Fleet: &fleet, Queue: &q}
}

// Admit says whether h.Node (of zone h.Zone) may take a place in v, or go on with the one it
// holds: no stop flag, the lock has room (see LockFree), health holds with every reboot in
// flight counted as failing (see HealthIn), and no node with less room goes first (see
// YieldIn).
func Admit(ctx context.Context, health Health, log *slog.Logger, v View, h lock.Holder, gate string, now time.Time) error {
	_, err := admit(ctx, health, log, v, h, gate, now)
	return err
}

// admit is Admit, saying too whether a service of the node carries a rule over the fleet (see
// lock.Limit.Places): the room is judged once before health (as much as there is at most) and
// once after, with what health found, and then, under auto, whether a holder reboots alone
// (see Alone).
func admit(ctx context.Context, health Health, log *slog.Logger, v View, h lock.Holder, gate string, now time.Time) (ruled bool, err error) {
	if v.Stop.Set {
		return false, StopError(v.Stop)
	}
	if err := LockFree(v, h, true, now); err != nil {
		return false, err
	}
	rep, err := healthIn(ctx, health, log, v, h.Node, gate)
	if err != nil {
		return false, err
	}
	ruled = rep.FleetRuled()
	if err := LockFree(v, h, ruled, now); err != nil {
		return ruled, err
	}
	ruleLess, err := RuleLess(ctx, health, v, h.Node)
	if err != nil {
		return ruled, err
	}
	if err := Alone(v, h.Node, ruleLess); err != nil {
		return ruled, err
	}
	return ruled, YieldIn(v, h.Node, rep, now)
}

// RuleLess are the holders of v's lock that run no service with a rule over the fleet (see
// Health.Ruled), read only where Alone needs them: under a limit of auto, for a node (node)
// that holds no place yet.
func RuleLess(ctx context.Context, hc Health, v View, node string) ([]string, error) {
	if _, holds := v.Lock.Holder(node); holds || !v.Limit.Auto {
		return nil, nil
	}
	var out []string
	for _, o := range v.Lock.Holders {
		ruled, err := hc.Ruled(ctx, o.Node)
		if err != nil {
			return nil, fmt.Errorf("read whether %s, holding a place, runs a service with a rule over the fleet: %w", o.Node, err)
		}
		if !ruled {
			out = append(out, o.Node)
		}
	}
	return out, nil
}

// Alone says whether node may take a place beside the holders of v as far as a limit of auto
// goes (nil), or why not. Under auto a node with no rule over the fleet reboots alone: it takes
// a place only when nobody holds one (see lock.Limit.Places), and nobody takes a place beside
// it while it holds one (ruleLess: the holders of v without such a rule, see RuleLess). Judged
// on the View the place is written against, two nodes racing never both pass: the one that
// writes second finds the other in the lock.
func Alone(v View, node string, ruleLess []string) error {
	if _, holds := v.Lock.Holder(node); holds || !v.Limit.Auto || len(ruleLess) == 0 {
		return nil
	}
	who := ruleLess[0] + " holds a place and runs"
	if len(ruleLess) > 1 {
		who = strings.Join(ruleLess, ", ") + " hold places and run"
	}
	return ending.Fail(ending.ErrLockHeld, "cannot take the reboot lock: %s no service with a rule over the fleet (none tagged %s, or only local_only ones): under the group's limit auto it reboots alone, and this node waits until it has finished", who, health.Tag)
}

// LockFree says whether h.Node (of zone h.Zone) could take a place in the lock as v has it at
// now, or go on with the place it holds (nil), or why not: a Python holder, a full lock (see
// lock.Limit; ruled as for Places: true before health is read), nodes before it in the group's
// queue whose turn it is (see lock.Queue.Ahead), or (for a holder still preparing) as many of
// the group's other holders rebooting as its limit allows.
func LockFree(v View, h lock.Holder, ruled bool, now time.Time) error {
	if held := v.LegacyHeld(); held != "" {
		if _, ok := v.Lock.Holder(h.Node); ok {
			return waitInPlace("the Python rebootmgr holds the lock (%s): not rebooting; this node keeps its place and waits", held)
		}
		return ending.Fail(ending.ErrLockHeld, "cannot take the reboot lock: the Python rebootmgr holds it (%s); wait for that node, or delete the key once it is back", held)
	}
	if mine, ok := v.Lock.Holder(h.Node); ok {
		if mine.Phase != lock.Preparing {
			return nil
		}
		return withinLimit(v, h)
	}
	if _, err := v.Lock.AcquireWithin(lock.Holder{Node: h.Node, Phase: lock.Preparing, Zone: h.Zone}, v.Limit, v.GroupNodes, ruled); err != nil {
		if v.Limit.Auto && !ruled {
			err = fmt.Errorf("%w; the group's limit is auto and no service of this node has a rule over the fleet (none tagged %s, or only local_only ones): with no rule to decide by, it reboots only alone", err, health.Tag)
		}
		return ending.Wrap(ending.ErrLockHeld, err, "cannot take the reboot lock")
	}
	// The places free now go to the first nodes of the queue that may go: as many as there
	// are places (one at a time under auto, where the rules, not a count, say how many).
	free := lock.Free(v.Lock, v.Limit, v.GroupNodes)
	if ahead, until := v.Queue.Ahead(h.Node, now, zoneAdmits(v), v.Sightings); len(ahead) >= free {
		place, in := v.Queue.Place(h.Node)
		if !in {
			place = len(v.Queue.Entries)
		}
		return &ending.Error{Gate: ending.ErrLockHeld, Msg: "cannot take the reboot lock yet: " + (&lock.QueuedError{Place: place + 1, Free: free, Ahead: ahead, Until: until}).Error(), Err: lock.ErrQueued, Until: until}
	}
	return nil
}

// zoneAdmits says whether a node of the queue could take a place in v as far as zones go: one
// that a zone rebooting keeps out holds up nobody.
func zoneAdmits(v View) func(lock.QueueEntry) bool {
	return func(e lock.QueueEntry) bool { return v.Lock.ZoneError(e.Node, v.Zones[e.Node], v.Limit.PerZone) == nil }
}

// withinLimit says whether fewer than the group's limit of h.Node's fellow holders are
// rebooting or finishing, and none of another zone where the limit is bounded per zone: a limit
// lowered while nodes prepare holds them back, keeping their places.
func withinLimit(v View, h lock.Holder) error {
	going := lock.Record{Version: v.Lock.Version}
	for _, o := range v.Lock.Holders {
		if o.Node != h.Node && o.Phase != lock.Preparing {
			going.Holders = append(going.Holders, o)
		}
	}
	if places := v.Limit.Places(v.GroupNodes, true); len(going.Holders) >= places {
		return waitInPlace("group %s allows %d reboots at once and %d other nodes are rebooting: not rebooting yet; this node keeps its place and waits", v.Group, places, len(going.Holders))
	}
	if err := going.ZoneError(h.Node, h.Zone, v.Limit.PerZone); err != nil {
		return waitInPlace("group %s is bounded per zone: %v; not rebooting yet, this node keeps its place and waits", v.Group, err)
	}
	return nil
}

// HealthIn is the health gate of node with the reboots in flight as v has them: every rule of
// every service of the node holds, with every other holder anywhere in the fleet (and every node
// the Python rebootmgr reboots) counted as a failing instance.
func HealthIn(ctx context.Context, health Health, log *slog.Logger, v View, node, gate string) error {
	_, err := healthIn(ctx, health, log, v, node, gate)
	return err
}

// healthIn is HealthIn, with the report it judged.
func healthIn(ctx context.Context, hc Health, log *slog.Logger, v View, node, gate string) (health.Report, error) {
	rep, err := hc.Check(ctx, node, v.InFlight(node))
	if err != nil {
		return rep, err
	}
	if err := Unhealthy(rep, v, node, gate); err != nil {
		return rep, err
	}
	log.Info("health checks pass", logkey.Gate, gate, logkey.Services, len(rep.Services))
	return rep, nil
}

// Unhealthy is the end of a run at the health gate (named gate) for rep, node's services judged
// with the reboots in flight as v has them; nil when rep passes. A health gate that fails only
// for the reboots in flight is a RoomError.
func Unhealthy(rep health.Report, v View, node, gate string) error {
	if rep.OK() {
		return nil
	}
	// A tag that cannot be read wraps health.ErrMalformedTag too: a problem of configuration.
	ge := ending.Error{Gate: ending.ErrUnhealthy, Msg: fmt.Sprintf("%s: %s", gate, rep.Reason()), Err: rep.Malformed()}
	if forRoom(rep, v, node) {
		return &ending.Error{Gate: ending.ErrUnhealthy, Msg: ge.Msg, Err: ErrForRoom}
	}
	if rep.RoomOnly {
		return &RoomError{gate: &ge, AtOnce: rep.Scarcity(), Services: rep.Roomier(), Seen: slices.DeleteFunc(v.Fleet.Nodes(), func(n string) bool { return n == node })}
	}
	return &ge
}

// ErrForRoom marks a health gate that fails only for reboots in flight in the node's own group
// under a limit that counts (see forRoom): the node waits in its group's queue (lock.ForRoom),
// told when a place opens, and watches nothing else meanwhile.
var ErrForRoom = errors.New("waiting for its group's reboots in flight")

// forRoom says whether rep fails only for reboots in flight that hold places in v's lock (the
// node's own group), under a limit that counts places: a place given back there is what the
// node waits for, and its group's queue tells it (see lock.Queue.Front). Under auto, or for a
// reboot of another group or of the Python rebootmgr, it waits for health as for any gate: any
// release anywhere may be its chance (see RoomError for the claims of room).
func forRoom(rep health.Report, v View, node string) bool {
	if _, holds := v.Lock.Holder(node); holds || len(rep.HeldBy) == 0 || v.Limit.Auto {
		return false
	}
	for _, n := range rep.HeldBy {
		if _, holds := v.Lock.Holder(n); !holds {
			return false
		}
	}
	return true
}

// ErrWaitInPlace marks a holder that may not reboot yet (its group's limit was lowered, or the
// Python rebootmgr holds the lock) and keeps its place while it waits.
var ErrWaitInPlace = errors.New("waiting in place")

func waitInPlace(format string, args ...any) error {
	return &ending.Error{Gate: ending.ErrLockHeld, Msg: fmt.Sprintf(format, args...), Err: ErrWaitInPlace}
}

// HolderIn is node's entry in rec, or the end of a run whose node lost its
func HolderIn(rec lock.Record, node string) (lock.Holder, error) {
	h, ok := rec.Holder(node)
	if !ok {
		return lock.Holder{}, ending.Fail(ending.ErrLockLost, "this node no longer holds the reboot lock (was it unlocked by an operator?): not rebooting")
	}
	return h, nil
}

// MayReboot says whether h.Node (of zone h.Zone), holding a place, may be rebooting in v (nil),
// or why not: a stop flag, the node disabled (where v holds its mark: see ForNode), its place
// lost, a Python holder, or a limit lowered below the group's reboots (those two keep its place:
// see ErrWaitInPlace).
func MayReboot(v View, h lock.Holder) error {
	if v.Stop.Set {
		return StopError(v.Stop)
	}
	if v.Disabled.Set {
		return ending.Disabled(h.Node, v.Disabled.Value)
	}
	if _, err := HolderIn(v.Lock, h.Node); err != nil {
		return err
	}
	if held := v.LegacyHeld(); held != "" {
		return waitInPlace("the Python rebootmgr holds the lock (%s): not rebooting; this node keeps its place and waits", held)
	}
	return withinLimit(v, h)
}
