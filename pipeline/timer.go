package pipeline

import "time"

// Timer is a wait on a clock that can be called off: what a process that waits for several
// moments at once, and forgets most of them, needs besides Clock.After (the daemon's retries,
// deadlines and refreshes).
type Timer interface {
	// C fires once, when the wait is over.
	C() <-chan time.Time
	// Stop calls the wait off: false when it had fired already, or was stopped.
	Stop() bool
}

// NewTimer waits for d on c: with a timer of c's own where c has them (SystemClock, a
// ShiftedClock over one, a test's clock), else with c.After, a wait that Stop only forgets.
func NewTimer(c Clock, d time.Duration) Timer {
	if t, ok := c.(interface{ NewTimer(time.Duration) Timer }); ok {
		return t.NewTimer(d)
	}
	return afterTimer{c.After(d)}
}

// NewTimer waits for d, unless stopped.
func (SystemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

// NewTimer waits for d as Clock does.
func (c ShiftedClock) NewTimer(d time.Duration) Timer { return NewTimer(c.Clock, d) }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// afterTimer is a wait of a clock without timers of its own: it cannot be called off.
type afterTimer struct{ c <-chan time.Time }

func (t afterTimer) C() <-chan time.Time { return t.c }
func (t afterTimer) Stop() bool          { return false }
