package sim

import (
	"testing"
	"time"
)

// TestClockJumpsAsAMachinesDo: a node's clock reads its wall clock, jumps and all, while times it
// read compare and subtract by how much true time passed, as readings of time.Now do.
func TestClockJumpsAsAMachinesDo(t *testing.T) {
	w := &World{}
	w.sched.now = epoch
	n := &node{offset: 3 * time.Second}
	c := clock{w: w, node: n}
	before := c.Now()
	if !before.Equal(epoch.Add(3*time.Second)) || before.Location() != time.UTC {
		t.Fatalf("the wall clock reads %v, want %v in UTC", before, epoch.Add(3*time.Second))
	}
	if got := before.Round(0); !got.Equal(before) || got.String() == before.String() {
		t.Fatalf("a reading without its monotonic clock is %v (%q), want the same wall time without m=", got, before.String())
	}
	w.sched.now = w.sched.now.Add(10 * time.Second)
	n.offset += time.Hour
	after := c.Now()
	cases := []struct {
		name      string
		got, want any
	}{
		{"the wall clock jumped", after.Round(0).Sub(before.Round(0)), time.Hour + 10*time.Second},
		{"elapsed is true time", after.Sub(before), 10 * time.Second},
		{"a deadline 30 minutes on has not passed", after.After(before.Add(30 * time.Minute)), false},
		{"a deadline 5 seconds on has passed", after.After(before.Add(5 * time.Second)), true},
		{"formatting shows the wall clock", after.Format(time.RFC3339), epoch.Add(time.Hour + 13*time.Second).Format(time.RFC3339)},
		{"equal to its own wall time", after.Equal(after.Round(0)), true},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}
