package place_test

import (
	"slices"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestWoken: a change of the lock or queue tells the nodes it brings to the queue's front, and
// nobody else; a holder's new deadline tells the first two.
func TestWoken(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	queue := lock.Queue{Version: lock.Version}.Join("a", t0).Join("b", t0).Join("c", t0).Join("d", t0)
	held := func(holders ...lock.Holder) lock.Record { return lock.Record{Version: lock.Version, Holders: holders} }
	x := lock.Holder{Node: "x", Phase: lock.Rebooting, Since: t0, Deadline: t0.Add(time.Hour)}
	view := func(rec lock.Record, l lock.Limit, q lock.Queue) place.View {
		return place.View{Group: "default", Lock: rec, Limit: l, Queue: q, Fleet: lock.Fleet{}.With("x", "default")}
	}
	served := func(v place.View, node string) place.Change {
		rec, _ := v.Lock.Acquire(lock.Holder{Node: node, Phase: lock.Preparing, Since: t0}, v.Limit.N)
		q := v.Queue.Served(node, t0, nil, nil)
		return place.Change{Lock: rec, Queue: &q}
	}
	places := func(nodes ...string) []place.Wake {
		var out []place.Wake
		for _, n := range nodes {
			out = append(out, place.Wake{Node: n, Place: true})
		}
		return out
	}
	queueOnly := func(v place.View, q lock.Queue) place.Change { return place.Change{Lock: v.Lock, Queue: &q} }
	opened := func(q lock.Queue, at time.Time) lock.Queue { q.Freed = at; return q }
	full := view(held(x), lock.One, queue)
	twoOfThree := view(held(x), lock.Limit{N: 3}, queue)
	free := view(held(), lock.One, queue)
	for _, tt := range []struct {
		name string
		v    place.View
		ch   place.Change
		want []place.Wake
	}{
		{"a release (its holder's deadline gone too) wakes the first, and the next should it miss its turn, for the place", full, place.ReleaseIn(full, "x", t0), places("a", "b")},
		{"the first taking the place wakes nobody", free, served(free, "a"), nil},
		{"a node joining a full lock wakes nobody", full, queueOnly(full, full.Queue.Join("e", t0)), nil},
		{"a node joining as a place opens wakes itself", view(held(), lock.One, lock.Queue{}), queueOnly(free, lock.Queue{}.Join("e", t0)), places("e")},
		{"a node of the front blocked by its own gates wakes the next behind the front, and the one now among the takers", twoOfThree, queueOnly(twoOfThree, queue.Join("e", t0).Block("a", "health")), places("c", "e")},
		{"a place opened (a limit raised: the queue notes it) wakes the whole front", view(held(x), lock.Limit{N: 2}, queue), queueOnly(view(held(x), lock.Limit{N: 2}, queue), opened(queue, t0)), places("a", "b")},
		{"a taker marked as having missed its turn wakes the one after it, and the next behind the front", free, queueOnly(free, queue.Block("a", lock.MissedTurn)), places("b", "c")},
		{"nodes named to wake besides hear too, once", free, place.Change{Lock: free.Lock, Queue: &queue, Wake: []string{"c", "d", "zz"}}, places("c", "d")},
		{"a holder's new deadline wakes the first two", full, place.Change{Lock: held(lock.Holder{Node: "x", Phase: lock.Finishing, Since: t0, Deadline: t0.Add(2 * time.Hour)})}, []place.Wake{{Node: "a"}, {Node: "b"}}},
		{"a holder's new phase alone wakes nobody", full, place.Change{Lock: held(lock.Holder{Node: "x", Phase: lock.Finishing, Since: t0, Deadline: t0.Add(time.Hour)})}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := place.Woken(tt.v, tt.ch); !slices.Equal(got, tt.want) {
				t.Fatalf("woken %v, want %v", got, tt.want)
			}
		})
	}
}

// TestWokenLate: nodes that joined the queue after the view a change was judged on are told what
// the change calls for, as any node new at the queue's front: a place when it opens one for them,
// a look when it changes a holder's deadline; nothing when they stand behind the front, or when
// the change leaves no place free and every deadline as it was.
func TestWokenLate(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	x := lock.Holder{Node: "x", Phase: lock.Rebooting, Since: t0, Deadline: t0.Add(time.Hour)}
	full := func(q lock.Queue) place.View {
		return place.View{Group: "default", Lock: lock.Record{Version: lock.Version, Holders: []lock.Holder{x}}, Limit: lock.One, Queue: q, Fleet: lock.Fleet{}.With("x", "default")}
	}
	empty := lock.Queue{Version: lock.Version}
	late := func(nodes ...string) []lock.QueueEntry {
		var out []lock.QueueEntry
		for _, n := range nodes {
			out = append(out, lock.QueueEntry{Node: n, Since: t0})
		}
		return out
	}
	newDeadline := place.Change{Lock: lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "x", Phase: lock.Finishing, Since: t0, Deadline: t0.Add(2 * time.Hour)}}}}
	newPhase := place.Change{Lock: lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "x", Phase: lock.Finishing, Since: t0, Deadline: t0.Add(time.Hour)}}}}
	for _, tt := range []struct {
		name   string
		v      place.View
		ch     place.Change
		joined []lock.QueueEntry
		may    bool
		want   []place.Wake
	}{
		{"a release judged on an empty queue tells the node that joined meanwhile of the place", full(empty), place.ReleaseIn(full(empty), "x", t0), late("n"), true, []place.Wake{{Node: "n", Place: true}}},
		{"behind one node waiting, it is of the front still (it goes should the first miss its turn)", full(empty.Join("a", t0)), place.ReleaseIn(full(empty.Join("a", t0)), "x", t0), late("n"), true, []place.Wake{{Node: "n", Place: true}}},
		{"behind the front, it hears nothing", full(empty.Join("a", t0).Join("b", t0)), place.ReleaseIn(full(empty.Join("a", t0).Join("b", t0)), "x", t0), late("n", "m"), true, nil},
		{"of two that joined meanwhile, those of the front", full(empty.Join("a", t0)), place.ReleaseIn(full(empty.Join("a", t0)), "x", t0), late("n", "m"), true, []place.Wake{{Node: "n", Place: true}}},
		{"a node the change's queue holds already was judged with it", full(empty), place.ReleaseIn(full(empty.Join("n", t0)), "x", t0), late("n"), true, nil},
		{"a holder's new deadline tells it to look", full(empty), newDeadline, late("n"), true, []place.Wake{{Node: "n"}}},
		{"a holder's new phase alone, the lock full, tells nobody", full(empty), newPhase, late("n"), false, nil},
		{"nobody joined meanwhile", full(empty), place.ReleaseIn(full(empty), "x", t0), nil, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if may := place.MayWakeLate(tt.v, tt.ch); may != tt.may {
				t.Fatalf("MayWakeLate %v, want %v", may, tt.may)
			}
			if got := place.WokenLate(tt.v, tt.ch, tt.joined); !slices.Equal(got, tt.want) {
				t.Fatalf("woken %v, want %v", got, tt.want)
			}
		})
	}
}
