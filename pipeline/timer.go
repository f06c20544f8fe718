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

// NewTimer waits for d, unless stopped.
func (SystemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
