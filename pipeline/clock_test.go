package pipeline

import (
	"testing"
	"time"
)

// TestShiftedClock: Now is moved by the offset, ahead or behind, and keeps a monotonic reading,
// so that a time taken from it and a later one differ by what the machine measured.
func TestShiftedClock(t *testing.T) {
	for _, offset := range []time.Duration{0, time.Hour, -40 * time.Minute} {
		c := ShiftedClock{Clock: SystemClock{}, Offset: offset}
		before := time.Now()
		now := c.Now()
		after := time.Now()
		if got := now.Round(0).Sub(before.Round(0)); got < offset || got > offset+after.Sub(before) {
			t.Errorf("offset %s: Now is %s after the machine's clock", offset, got)
		}
		if now.String() == now.Round(0).String() {
			t.Errorf("offset %s: Now has no monotonic reading: %s", offset, now)
		}
		if d := c.Now().Sub(now); d < 0 || d > time.Second {
			t.Errorf("offset %s: two readings %s apart", offset, d)
		}
	}
}
