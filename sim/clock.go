package sim

import (
	"time"

	"github.com/rebootmgr/rebootmgr/internal/monotonic"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// clock is a node's clock: the simulation's true time, shifted by the node's offset (which a
// clock jump moves). Its waits are items of the scheduler, measured in true time, as the
// machine's monotonic clock measures them whatever its wall clock does.
type clock struct {
	w    *World
	node *node
}

var _ pipeline.Clock = clock{}

// Now is the node's clock: its wall clock, the true time shifted by its offset, with the true
// time since the epoch as its monotonic reading (see monotonic.Reading).
func (c clock) Now() time.Time {
	return monotonic.Reading(c.w.sched.now.Add(c.node.offset), c.w.sched.now.Sub(epoch)+time.Hour)
}

// After is a wait that the goroutine calling it is about to block on (the pipeline's settle and
// stay-green waits): the process is parked from here until the wait is over.
func (c clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	p := c.node.proc
	if p == nil || p.dead {
		ch <- c.Now()
		return ch
	}
	// A run may have let watches go that its daemon held (a node staying green hears its health
	// and its turn key: see pipeline.Listening): what they saw while held is heard now.
	c.w.release(p)
	if p.health != nil {
		c.w.healthStepped(p)
	}
	p.wait = c.w.sched.add(c.w.sched.now.Add(max(d, 0)), c.node.name, "wait "+d.String(), func() {
		p.wait = nil
		ch <- c.Now()
		c.w.awaitPark()
	})
	p.parkOnWait()
	return ch
}

// NewTimer is one of the daemon loop's waits: nothing blocks on it; when it is over the process
// looks at what is due (see proc.poke).
func (c clock) NewTimer(d time.Duration) pipeline.Timer {
	t := &timer{ch: make(chan time.Time, 1)}
	p := c.node.proc
	t.it = c.w.sched.add(c.w.sched.now.Add(max(d, 0)), c.node.name, "timer "+d.String(), func() {
		if p == nil || p.dead {
			return
		}
		t.fired = true
		t.ch <- c.Now()
		c.w.poke(p)
	})
	return t
}

// timer is a daemon's wait on the node's clock.
type timer struct {
	ch    chan time.Time
	it    *item
	fired bool
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	if t.fired || t.it.gone {
		return false
	}
	t.it.gone = true
	return true
}
