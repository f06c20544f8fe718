package pipelinetest

import (
	"sync"
	"time"

	"github.com/rebootmgr/rebootmgr/pipeline"
)

// ManualClock is time that a test moves by hand: a wait (After, NewTimer) fires when Advance
// passes its moment, never by itself, so that a test drives retries, deadlines and refreshes
// one by one. A wait of zero or less fires at once. Pending tells the test when the code under
// test waits.
type ManualClock struct {
	mu       sync.Mutex
	now      time.Time
	timers   []*manualTimer
	watchers []pendingWatch
}

type pendingWatch struct {
	n  int
	ch chan struct{}
}

// NewManualClock returns a clock at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now is the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires once the clock has been advanced by d.
func (c *ManualClock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

// NewTimer fires once the clock has been advanced by d, unless stopped before.
func (c *ManualClock) NewTimer(d time.Duration) pipeline.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{clock: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.notify()
	return t
}

// Advance moves the clock on by d, and fires every wait whose moment it reaches, earliest
// first.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for {
		i := c.earliest()
		if i < 0 || c.timers[i].at.After(c.now) {
			break
		}
		t := c.timers[i]
		c.timers = append(c.timers[:i], c.timers[i+1:]...)
		t.c <- t.at
	}
	c.notify()
}

// earliest is the index of the wait due first (-1: none).
func (c *ManualClock) earliest() int {
	at := -1
	for i, t := range c.timers {
		if at < 0 || t.at.Before(c.timers[at].at) {
			at = i
		}
	}
	return at
}

// Pending returns a channel closed once at least n waits are pending (set, neither fired nor
// stopped).
func (c *ManualClock) Pending(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := pendingWatch{n: n, ch: make(chan struct{})}
	c.watchers = append(c.watchers, w)
	c.notify()
	return w.ch
}

// Waits are the moments of the waits pending, in the order they were set.
func (c *ManualClock) Waits() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.timers))
	for _, t := range c.timers {
		out = append(out, t.at)
	}
	return out
}

// notify closes the channels of the watchers whose count is reached; c.mu is held.
func (c *ManualClock) notify() {
	kept := c.watchers[:0]
	for _, w := range c.watchers {
		if len(c.timers) >= w.n {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	c.watchers = kept
}

type manualTimer struct {
	clock *ManualClock
	at    time.Time
	c     chan time.Time
}

func (t *manualTimer) C() <-chan time.Time { return t.c }

func (t *manualTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.timers {
		if p == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}
