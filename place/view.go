package place

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// View is the state of the reboot locks as read at one moment: the node's group's record and
// limit, every holder of the fleet, and the Python rebootmgr's holders. A Change committed
// against a View is written only if nothing the View holds changed since it was read.
type View struct {
	Group string
	// Stop is the fleet's stop flag, else the group's.
	Stop  Flag
	Lock  lock.Record
	Limit lock.Limit
	// GroupNodes is how many nodes Consul knows in the group: read for a limit that is a share
	// of them (0 otherwise).
	GroupNodes int
	// Zones are the zones of the group's nodes that name one (node meta rebootmgr-zone), read
	// from the catalog for a limit bounded per zone (nil otherwise): a node of the queue that a
	// zone rebooting keeps out holds up nobody.
	Zones map[string]string
	Fleet lock.Fleet
	// Queue is the order in which the group's nodes asked for its lock.
	Queue lock.Queue
	// Claims are the nodes of the fleet waiting for room that go first when it opens (see
	// lock.Claims); read with the rest, never checked by a Commit: they order, never admit.
	Claims lock.Claims
	// Legacy are the reboots the Python rebootmgr has in progress or is preparing: the key that
	// says so (a session lock held, or a marker rebootmgr did not write), and the node it names
	// ("" when it names none: a session lock).
	Legacy map[string]string
	// Version is what the store needs to tell whether the View is still current; the pipeline
	// never looks into it.
	Version any
	// Sightings judges the times other nodes wrote in the records (see lock.Sightings): the
	// reader's memory, nil for a one-off command.
	Sightings *lock.Sightings
	// Disabled is the reader's own disabled mark (rebootmgr's, else the Python rebootmgr's
	// config), read with the rest for a reader named by ForNode; unset otherwise.
	Disabled Flag
	// Partial: Queue holds the queue's record and the reader's own ask alone, not the rest of
	// the group's asks (see FrontOnly). The asks all stand behind the record, so the reader's
	// own entry is at least as far back in the whole queue as here: what holds of the nodes
	// before it here holds there too (Queue.Ahead, Queue.Front), but nothing more. Nothing is
	// committed against it.
	Partial bool
}

// frontOnly and reader are the context keys of FrontOnly and ForNode.
type (
	frontOnly struct{}
	reader    struct{}
)

// ForNode asks the store to read node's own disabled mark in the same read as the View
// (View.Disabled): the last read before a reboot judges it with the stop flags, so that a node
// disabled while it settled and checked again does not reboot.
func ForNode(ctx context.Context, node string) context.Context {
	return context.WithValue(ctx, reader{}, node)
}

// NodeOf is the node ForNode named in ctx, if any.
func NodeOf(ctx context.Context) (string, bool) {
	node, ok := ctx.Value(reader{}).(string)
	return node, ok
}

// FrontOnly asks the store to read, for node, a View whose queue is the queue's record and
// node's own ask (View.Partial): what a node waiting far back in a long queue reads at its
// tick, at a cost the group's size does not change. A store may read the whole View instead.
func FrontOnly(ctx context.Context, node string) context.Context {
	return context.WithValue(ctx, frontOnly{}, node)
}

// FrontFor is the node FrontOnly named in ctx, if any.
func FrontFor(ctx context.Context) (string, bool) {
	node, ok := ctx.Value(frontOnly{}).(string)
	return node, ok
}

// ErrPartial is a Commit against a View of the queue's front alone (View.Partial).
var ErrPartial = errors.New("a view of the queue's front alone is never written against: read the whole view")

// Change is what a run writes against a View.
type Change struct {
	// Lock is the group's record as it is to be.
	Lock lock.Record
	// Fleet is the fleet's record as it is to be; nil when the change adds or removes no
	// holder (then it is neither written nor checked).
	Fleet *lock.Fleet
	// Queue is the group's queue as it is to be; nil when the change leaves it as it is (then it
	// is neither written nor checked).
	Queue *lock.Queue
	// Wake are nodes of the queue to tell that a place is theirs to look at, besides those the
	// change brings to its front (see Woken).
	Wake []string
	// Untold: the change was written without telling the nodes it woke (the store's ACL policy
	// denies their turn keys: see ErrUntold); nobody follows them (see WokeEntries).
	Untold bool
	// Limit is the group's limit as it is to be; nil when the change leaves it as it is (then it
	// is neither written nor checked).
	Limit *lock.Limit
}

// Sighted is locks whose Views carry seen (see View.Sightings): the Views a process that lives
// on reads judge the times other nodes wrote by its memory of them.
func Sighted(locks Locks, seen *lock.Sightings) Locks { return sighted{Locks: locks, seen: seen} }

type sighted struct {
	Locks
	seen *lock.Sightings
}

func (s sighted) View(ctx context.Context) (View, error) {
	v, err := s.Locks.View(ctx)
	v.Sightings = s.seen
	return v, err
}

// InFlight is every node whose reboot is under way anywhere in the fleet, except self, with
// why (see InFlight).
func (v View) InFlight(self string) map[string]string {
	return InFlight(self, v.Fleet, map[string]lock.Record{v.Group: v.Lock}, v.Legacy)
}

// InFlight is every node whose reboot is under way, except self, with why: a holder of any
// group's lock (the fleet's record, and the groups' records given), in any phase, and a node
// the Python rebootmgr reboots (legacy: key -> node). Each is a failing instance of every
// service it runs, whatever its checks say now.
func InFlight(self string, fleet lock.Fleet, locks map[string]lock.Record, legacy map[string]string) map[string]string {
	down := map[string]string{}
	for node, group := range fleet.Holders {
		down[node] = "holds a place in the reboot lock of group " + group
	}
	for group, rec := range locks {
		for _, h := range rec.Holders {
			down[h.Node] = fmt.Sprintf("holds the reboot lock of group %s (%s)", group, h.Phase)
		}
	}
	for key, node := range legacy {
		if node != "" {
			down[node] = "rebooted by the Python rebootmgr (" + key + ")"
		}
	}
	delete(down, self)
	return down
}

// LegacyHeld names the Python rebootmgr's holders in one line ("" when there are none).
func (v View) LegacyHeld() string { return LegacyHeld(v.Legacy) }

// LegacyHeld names the Python rebootmgr's holders (key -> node, "" for a session lock, whose
// node is not known) in one line: "KEY = NODE" for a marker, "KEY" for a session lock; "" when
// there are none.
func LegacyHeld(legacy map[string]string) string {
	parts := make([]string, 0, len(legacy))
	for _, key := range slices.Sorted(maps.Keys(legacy)) {
		if node := legacy[key]; node != "" {
			parts = append(parts, key+" = "+node)
		} else {
			parts = append(parts, key)
		}
	}
	return strings.Join(parts, ", ")
}

// Wake is a node of the group's queue told to look again, and why.
type Wake struct {
	Node string
	// Place: a place opened for it (it runs); else only a holder's deadline changed (it looks at
	// the lock, and again when the deadline passes).
	Place bool
}

// Woken are the nodes of the group's queue that ch brings to its front (see lock.Queue.Front):
// all of the front when a place opened (the queue's Freed moved: a release, a limit raised),
// else those new in it or new among its takers (the first, one per free place: the nodes before
// them left or were blocked), and those ch names to wake besides (Change.Wake). Each is told
// (its turn key in the group) with ch; no other waiting node hears of it. A change of a
// holder's deadline tells the first two of the queue too, whether a place opened or not: nodes
// waiting for their turn hear nothing else of the lock, and one of them must look again when
// that deadline passes (two, in case the first's daemon is gone).
func Woken(v View, ch Change) []Wake {
	q := v.Queue
	if ch.Queue != nil {
		q = *ch.Queue
	}
	limit := v.Limit
	if ch.Limit != nil {
		limit = *ch.Limit
	}
	opened := !q.Freed.Equal(v.Queue.Freed)
	before := v.Queue.Front(v.Lock, v.Limit, v.GroupNodes, v.Zones)
	takersBefore := before[:min(len(before), lock.Free(v.Lock, v.Limit, v.GroupNodes))]
	after := q.Front(ch.Lock, limit, v.GroupNodes, v.Zones)
	free := lock.Free(ch.Lock, limit, v.GroupNodes)
	var out []Wake
	told := func(n string) bool {
		return slices.ContainsFunc(out, func(w Wake) bool { return w.Node == n })
	}
	for i, n := range after {
		if opened || !slices.Contains(before, n) || (i < free && !slices.Contains(takersBefore, n)) {
			out = append(out, Wake{Node: n, Place: true})
		}
	}
	for _, n := range ch.Wake {
		if _, in := q.Place(n); in && !told(n) {
			out = append(out, Wake{Node: n, Place: true})
		}
	}
	if !sameDeadlines(v.Lock, ch.Lock) {
		watchers := 0
		for _, e := range q.Entries {
			if _, holds := ch.Lock.Holder(e.Node); holds || e.Blocked != "" {
				continue
			}
			if !told(e.Node) {
				out = append(out, Wake{Node: e.Node})
			}
			if watchers++; watchers == 2 {
				break
			}
		}
	}
	return out
}

// sameDeadlines says whether two records give every holder the same deadline.
func sameDeadlines(a, b lock.Record) bool {
	deadlines := func(r lock.Record) map[string]time.Time {
		out := map[string]time.Time{}
		for _, h := range r.Holders {
			if !h.Deadline.IsZero() {
				out[h.Node] = h.Deadline
			}
		}
		return out
	}
	return maps.EqualFunc(deadlines(a), deadlines(b), time.Time.Equal)
}
