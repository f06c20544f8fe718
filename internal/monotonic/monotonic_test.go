package monotonic

import (
	"testing"
	"time"
)

// TestReadingJumpsAsAMachinesDo: two readings of a clock whose wall jumped an hour on while ten
// seconds passed compare and subtract by the ten seconds, and show the wall clock, as readings of
// time.Now do.
func TestReadingJumpsAsAMachinesDo(t *testing.T) {
	wall := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	before := Reading(wall, time.Hour)
	after := Reading(wall.Add(time.Hour+10*time.Second), time.Hour+10*time.Second)
	cases := []struct {
		name      string
		got, want any
	}{
		{"the wall clock", before.Round(0), wall},
		{"a reading shows its monotonic clock", before.Round(0).String() != before.String(), true},
		{"the wall clock jumped", after.Round(0).Sub(before.Round(0)), time.Hour + 10*time.Second},
		{"elapsed is true time", after.Sub(before), 10 * time.Second},
		{"a deadline 30 minutes on has not passed", after.After(before.Add(30 * time.Minute)), false},
		{"a deadline 5 seconds on has passed", after.After(before.Add(5 * time.Second)), true},
		{"formatting shows the wall clock", after.Format(time.RFC3339), wall.Add(time.Hour + 10*time.Second).Format(time.RFC3339)},
		{"equal to its own wall time", after.Equal(after.Round(0)), true},
		{"no monotonic reading before 1885", Reading(time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour).String(), time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC).String()},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}
