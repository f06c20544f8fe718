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
