package pipeline

import "time"

// ShiftedClock is Clock with Now moved by Offset, for tests of how a fleet bears clocks that
// differ: a node's clock ahead (Offset > 0) or behind. After waits as Clock does, and Now keeps
// the monotonic reading of Clock's, moved alike (time.Time.Add), so that durations measured on
// it are the machine's.
type ShiftedClock struct {
	Clock  Clock
	Offset time.Duration
}

// Now is Clock's now, moved by Offset.
func (c ShiftedClock) Now() time.Time { return c.Clock.Now().Add(c.Offset) }

// After waits for d, as Clock does.
func (c ShiftedClock) After(d time.Duration) <-chan time.Time { return c.Clock.After(d) }
