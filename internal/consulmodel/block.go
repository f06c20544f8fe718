package consulmodel

import (
	"context"
	"sort"
	"strings"
	"time"
)

// Consul's bounds of a blocking query's wait (default_query_time, max_query_time). Consul adds
// a random stagger of up to a sixteenth of the wait; the model does not (it would need a
// random source the simulator does not own).
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

// waiter is one blocking query waiting for its index to pass the one it was asked with. ready
// says, under the model's lock, whether it has; a change it is registered for fires it.
type waiter struct {
	ready func() bool
	ch    chan struct{}
	set   *waitSet
	pos   int
	fired bool
}

// waitSet is the waiters of one thing (a key, a prefix, a node, a service), in the order they
// came (a removal moves the last into the gap, which is deterministic too).
type waitSet struct {
	ws []*waiter
	// owner and name are where the registry files the set (nil for the catalog's); prefix says
	// the name is also in the registry's prefixes.
	owner  map[string]*waitSet
	name   string
	prefix bool
}

func (s *waitSet) add(w *waiter) {
	w.set, w.pos = s, len(s.ws)
	s.ws = append(s.ws, w)
}

func (s *waitSet) remove(w *waiter) {
	last := s.ws[len(s.ws)-1]
	s.ws[w.pos], last.pos = last, w.pos
	s.ws[len(s.ws)-1] = nil
	s.ws = s.ws[:len(s.ws)-1]
	w.set = nil
}

// waitRegistry is every blocking query waiting, by what wakes it: a key's change, a change
// under a prefix, a change of a node's catalog entry, of a service's health, or any change of
// the catalog (for the reads whose index is a whole table's).
type waitRegistry struct {
	key, prefix, node, service map[string]*waitSet
	prefixes                   []string // the prefixes with waiters, sorted
	catalog                    waitSet
	// waiting counts the queries waiting that no change has fired yet.
	waiting int
}

func (r *waitRegistry) init() {
	r.key, r.prefix, r.node, r.service = map[string]*waitSet{}, map[string]*waitSet{}, map[string]*waitSet{}, map[string]*waitSet{}
}

func setOf(m map[string]*waitSet, k string) *waitSet {
	s := m[k]
	if s == nil {
		s = &waitSet{owner: m, name: k}
		m[k] = s
	}
	return s
}

func (r *waitRegistry) onKey(k string) func(*waiter) {
	return func(w *waiter) { setOf(r.key, k).add(w) }
}
func (r *waitRegistry) onNode(n string) func(*waiter) {
	return func(w *waiter) { setOf(r.node, n).add(w) }
}
func (r *waitRegistry) onService(s string) func(*waiter) {
	return func(w *waiter) { setOf(r.service, s).add(w) }
}
func (r *waitRegistry) onCatalog() func(*waiter) { return func(w *waiter) { r.catalog.add(w) } }
func (r *waitRegistry) onPrefix(p string) func(*waiter) {
	return func(w *waiter) {
		if _, ok := r.prefix[p]; !ok {
			r.prefixes = insertSorted(r.prefixes, p)
		}
		s := setOf(r.prefix, p)
		s.prefix = true
		s.add(w)
	}
}

// drop forgets a waiter that ended without being fired (its wait passed, its context ended).
func (r *waitRegistry) drop(w *waiter) {
	s := w.set
	s.remove(w)
	r.waiting--
	r.forget(s)
}

// forget files away a set left empty.
func (r *waitRegistry) forget(s *waitSet) {
	if len(s.ws) > 0 || s.owner == nil {
		return
	}
	delete(s.owner, s.name)
	if s.prefix {
		r.prefixes = removeSorted(r.prefixes, s.name)
	}
}

// fire wakes the waiters of s that are ready.
func (r *waitRegistry) fire(s *waitSet) {
	if s == nil {
		return
	}
	for i := 0; i < len(s.ws); {
		w := s.ws[i]
		if !w.ready() {
			i++
			continue
		}
		s.remove(w)
		w.fired = true
		r.waiting--
		close(w.ch)
	}
	r.forget(s)
}

// wake fires the waiters the changes concern.
func (r *waitRegistry) wake(c *changes) {
	for _, k := range c.keys {
		r.fire(r.key[k])
	}
	// A copy: firing may forget a prefix.
	for _, p := range append([]string(nil), r.prefixes...) {
		for _, k := range c.keys {
			if strings.HasPrefix(k, p) {
				r.fire(r.prefix[p])
				break
			}
		}
	}
	for _, n := range c.nodes {
		r.fire(r.node[n])
	}
	for _, s := range c.services {
		r.fire(r.service[s])
	}
	if c.catalog {
		r.fire(&r.catalog)
	}
}

// Waiting is how many blocking queries wait in the model for a change, their wait's end or
// their context's: a change that wakes some lowers it before it returns (before OnWrite is
// called), so that a simulator knows how many woken queries are on their way to the gate.
func (m *Model) Waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waits.waiting
}

// block waits (m.mu held on entry and on return, released while waiting) until ready, fired
// by a change register files it under, or the wait passes, or ctx ends.
func (m *Model) block(ctx context.Context, register func(*waiter), ready func() bool, wait time.Duration) {
	w := &waiter{ready: ready, ch: make(chan struct{})}
	register(w)
	m.waits.waiting++
	after := m.After
	if after == nil {
		after = time.After
	}
	m.mu.Unlock()
	select {
	case <-w.ch:
	case <-after(wait):
	case <-ctx.Done():
	}
	m.mu.Lock()
	if !w.fired {
		m.waits.drop(w)
	}
}

// sortedKeys is the keys of a map, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
