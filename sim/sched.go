package sim

import (
	"cmp"
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
// seed: every item is made by the one goroutine running at that moment.
type scheduler struct {
	rng   *rand.Rand
	now   time.Time
	seq   uint64
	items []*item
}

// add schedules what at at.
func (s *scheduler) add(at time.Time, node, what string, fire func()) *item {
	s.seq++
	it := &item{seq: s.seq, at: at, node: node, what: what, fire: fire}
	s.items = append(s.items, it)
	return it
}

// next picks the item to do next: one of those ready now, chosen by the seed; when none is,
// time moves on to the earliest. It returns nil when nothing is left.
func (s *scheduler) next() *item {
	s.items = slices.DeleteFunc(s.items, func(it *item) bool { return it.gone })
	if len(s.items) == 0 {
		return nil
	}
	var ready []int
	for i, it := range s.items {
		if !it.at.After(s.now) {
			ready = append(ready, i)
		}
	}
	if len(ready) == 0 {
		earliest := slices.MinFunc(s.items, func(a, b *item) int {
			return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.seq, b.seq))
		})
		s.now = earliest.at
		return s.take(slices.Index(s.items, earliest))
	}
	return s.take(ready[s.rng.IntN(len(ready))])
}

func (s *scheduler) take(i int) *item {
	it := s.items[i]
	s.items = slices.Delete(s.items, i, i+1)
	return it
}
