package sim

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"time"
)

// item is one thing the scheduler may do next: answer a parked request, end a wait, fire a
// daemon's timer, deliver a watch's events, apply a fault, boot a machine.
type item struct {
	seq  uint64
	at   time.Time // when it may happen, on the simulation's true time
	node string
	what string
	// fire does it; the scheduler holds the baton while it runs (see World.resume).
	fire func()
	// gone: called off (a timer stopped, a process killed).
	gone bool
}

// scheduler holds the items in the order they were made, which is the same at every run of a
// seed: every item is made by the one goroutine running at that moment. The items ready (due
// at the current time or before) are kept apart, in the order they were made; the others wait
// in a heap by time, then order made, and join the ready ones when time reaches them.
type scheduler struct {
	rng *rand.Rand
	now time.Time
	seq uint64
	// ready are items due by now, by seq; later the others.
	ready []*item
	later itemHeap
}

// add schedules what at at.
func (s *scheduler) add(at time.Time, node, what string, fire func()) *item {
	s.seq++
	it := &item{seq: s.seq, at: at, node: node, what: what, fire: fire}
	if at.After(s.now) {
		heap.Push(&s.later, it)
	} else {
		// The newest item: last in the order made.
		s.ready = append(s.ready, it)
	}
	return it
}

// next picks the item to do next: one of those ready now, chosen by the seed; when none is,
// time moves on to the earliest. It returns nil when nothing is left.
func (s *scheduler) next() *item {
	s.due()
	s.ready = slices.DeleteFunc(s.ready, func(it *item) bool { return it.gone })
	if len(s.ready) > 0 {
		i := s.rng.IntN(len(s.ready))
		it := s.ready[i]
		s.ready = slices.Delete(s.ready, i, i+1)
		return it
	}
	for s.later.Len() > 0 {
		it := heap.Pop(&s.later).(*item)
		if !it.gone {
			s.now = it.at
			return it
		}
	}
	return nil
}

// due moves the items that time has reached from later to ready, keeping ready in the order
// made.
func (s *scheduler) due() {
	for s.later.Len() > 0 && !s.later[0].at.After(s.now) {
		it := heap.Pop(&s.later).(*item)
		if it.gone {
			continue
		}
		i, _ := slices.BinarySearchFunc(s.ready, it.seq, func(r *item, seq uint64) int {
			switch {
			case r.seq < seq:
				return -1
			case r.seq > seq:
				return 1
			}
			return 0
		})
		s.ready = slices.Insert(s.ready, i, it)
	}
}

// itemHeap orders items by time, then by the order they were made.
type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
