package watch

import (
	"maps"
	"slices"
	"sync"
)

// Tap hears the events sent to its Events from the moment it was made, and those pending
// then, without taking any: the evaluation still sees every one (see Events.Take). A run of the
// pipeline that waits on what the watches report (a node staying green) listens through one,
// and leaves the daemon's loop every event to judge after it.
type Tap struct {
	e    *Events
	mu   sync.Mutex
	seen map[Source]bool
	// blind: a watch stopped reading what it watches since the last Take.
	blind bool
	wake  chan struct{}
}

// Tap starts hearing the events sent to e; the events pending now are heard at once (a full
// batch, which may have dropped some, as a watch that did not read).
func (e *Events) Tap() *Tap {
	t := &Tap{e: e, seen: map[Source]bool{}, wake: make(chan struct{}, 1)}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.pending {
		t.hear(ev.Source)
	}
	// A full batch may have dropped events of other sources: what they said is not known.
	t.blind = len(e.pending) >= MaxPending
	e.taps = append(e.taps, t)
	return t
}

// Tapped says whether a tap hears e's events now.
func (e *Events) Tapped() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.taps) > 0
}

// hear notes an event of src, and wakes whoever waits on the tap.
func (t *Tap) hear(src Source) {
	t.mu.Lock()
	t.seen[src] = true
	t.mu.Unlock()
	signal(t.wake)
}

// lost notes that a watch stopped reading what it watches, and wakes whoever waits on the tap.
func (t *Tap) lost() {
	t.mu.Lock()
	t.blind = true
	t.mu.Unlock()
	signal(t.wake)
}

// Wake is ready when an event was heard, or a watch stopped reading, since the last Take.
func (t *Tap) Wake() <-chan struct{} { return t.wake }

// Take returns the sources of the events heard since the last Take, sorted, and clears them;
// watching says whether every watch that feeds the events read what it watches all the while
// since the last Take, and does now (see Events.Reading).
func (t *Tap) Take() (sources []Source, watching bool) {
	t.mu.Lock()
	sources = slices.Sorted(maps.Keys(t.seen))
	clear(t.seen)
	blind := t.blind
	t.blind = false
	t.mu.Unlock()
	return sources, !blind && t.e.Watching()
}

// Close stops the tap: it hears nothing more.
func (t *Tap) Close() {
	e := t.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.taps = slices.DeleteFunc(e.taps, func(o *Tap) bool { return o == t })
}

// Reading says whether the watch name (one that feeds e) reads what it watches now: false while
// it fails, or before it started. A watch that ends says so with Gone.
func (e *Events) Reading(name string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reading == nil {
		e.reading = map[string]bool{}
	}
	was, known := e.reading[name]
	e.reading[name] = ok
	if !ok && (was || !known) {
		for _, t := range e.taps {
			t.lost()
		}
	}
}

// Gone forgets the watch name (see Reading): it ended.
func (e *Events) Gone(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.reading, name)
}

// Watching says whether watches feed e, and every one reads what it watches now: a change is
// then sent as an event (within a query's round trip). False when none does (a daemon that only
// ticks), or one fails or has not started yet.
func (e *Events) Watching() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.reading) == 0 {
		return false
	}
	for _, ok := range e.reading {
		if !ok {
			return false
		}
	}
	return true
}
