package pipelinetest

import (
	"testing"
	"time"
)

// TestManualClock: a wait fires when Advance passes its moment and not before, earliest first;
// a stopped one never does; a wait of zero fires at once; Pending counts the waits set.
func TestManualClock(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := NewManualClock(start)
	fired := func(ch <-chan time.Time) (time.Time, bool) {
		select {
		case at := <-ch:
			return at, true
		default:
			return time.Time{}, false
		}
	}
	if _, ok := fired(c.After(0)); !ok {
		t.Fatal("a wait of zero did not fire at once")
	}
	pending := c.Pending(3)
	late, early, stopped := c.NewTimer(2*time.Minute), c.NewTimer(time.Minute), c.NewTimer(time.Minute)
	select {
	case <-pending:
	default:
		t.Fatal("three waits set, Pending(3) not closed")
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: true the first time only")
	}
	c.Advance(time.Minute - time.Nanosecond)
	if _, ok := fired(early.C()); ok {
		t.Fatal("fired before its moment")
	}
	c.Advance(time.Nanosecond)
	if at, ok := fired(early.C()); !ok || !at.Equal(start.Add(time.Minute)) {
		t.Fatalf("at its moment: fired %v at %v", ok, at)
	}
	if _, ok := fired(stopped.C()); ok {
		t.Fatal("a stopped wait fired")
	}
	if got := c.Waits(); len(got) != 1 || !got[0].Equal(start.Add(2*time.Minute)) {
		t.Fatalf("waits %v, want the late one alone", got)
	}
	c.Advance(time.Hour)
	if _, ok := fired(late.C()); !ok || late.Stop() {
		t.Fatal("an advance past its moment: not fired, or stopped after")
	}
	if !c.Now().Equal(start.Add(time.Hour + time.Minute)) {
		t.Fatalf("now %v", c.Now())
	}
}
