package lock

import (
	"testing"
	"time"
)

func TestSightings(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		seen    bool // a process that lives on (else a one-off command)
		written time.Time
		first   time.Time // the moment its first judge judged at (a run's now)
		read    time.Time // the process's clock then (zero: none given)
		now     time.Time // when judged
		want    time.Time
	}{
		{"a time seen as it was written", true, t0, t0.Add(time.Second), time.Time{}, t0.Add(time.Minute), t0},
		{"written by a clock an hour ahead: when seen", true, t0.Add(time.Hour), t0, time.Time{}, t0.Add(time.Minute), t0},
		{"written by a clock ten minutes behind: a skew before it was seen", true, t0.Add(-10 * time.Minute), t0, time.Time{}, t0.Add(time.Minute), t0.Add(-Skew)},
		{"within the skew before it was seen: as written", true, t0.Add(-30 * time.Second), t0, time.Time{}, t0.Add(time.Minute), t0.Add(-30 * time.Second)},
		{"first seen late: a skew before", true, t0.Add(-3 * time.Hour), t0, time.Time{}, t0, t0.Add(-Skew)},
		{"a one-off command: the past as written", false, t0.Add(-3 * time.Hour), t0, time.Time{}, t0, t0.Add(-3 * time.Hour)},
		{"a one-off command: the future as now", false, t0.Add(time.Hour), t0, time.Time{}, t0, t0},
		{"no time", true, time.Time{}, t0, time.Time{}, t0, time.Time{}},
		// A run judges at the moment it began, and reads after: held up between the two (its
		// process paused, Consul slow), it reads times written after its now. Each is seen when
		// it was read, by the process's clock, not at the run's now: else a turn kept a moment
		// before would look as old as the hold-up was long, and a cooldown just begun as over.
		{"read after a hold-up: seen when read", true, t0.Add(3 * time.Minute), t0, t0.Add(3*time.Minute + 10*time.Second), t0.Add(3*time.Minute + 20*time.Second), t0.Add(3 * time.Minute)},
		{"read after a hold-up, written by a clock ahead: when read", true, t0.Add(time.Hour), t0, t0.Add(3 * time.Minute), t0.Add(4 * time.Minute), t0.Add(3 * time.Minute)},
		{"read after a hold-up, written by a clock behind: a skew before it was read", true, t0.Add(-10 * time.Minute), t0, t0.Add(3 * time.Minute), t0.Add(4 * time.Minute), t0.Add(3*time.Minute - Skew)},
		{"a clock behind the judge's now: at the now", true, t0.Add(time.Hour), t0, t0.Add(-time.Minute), t0.Add(time.Minute), t0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s *Sightings
			if tt.seen {
				var clock func() time.Time
				if !tt.read.IsZero() {
					clock = func() time.Time { return tt.read }
				}
				s = NewSightings(clock)
				s.At("x", tt.written, tt.first)
			}
			if got := s.At("x", tt.written, tt.now); !got.Equal(tt.want) {
				t.Fatalf("at %v, want %v", got, tt.want)
			}
		})
	}

	s := NewSightings(nil)
	s.At("x", t0.Add(time.Hour), t0)
	if got := s.At("x", t0.Add(2*time.Hour), t0.Add(5*time.Minute)); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("a new time written is a new sighting: %v", got)
	}
	if got := s.At("y", t0.Add(2*time.Hour), t0.Add(6*time.Minute)); !got.Equal(t0.Add(6 * time.Minute)) {
		t.Fatalf("each event its own sighting: %v", got)
	}

	// The machine's own clock jumps after the sighting: the time judged does not move with it.
	real := time.Now()
	s = NewSightings(nil)
	at := s.At("x", real.Add(-time.Second).Round(0), real)
	jumped := real.Add(time.Hour).Round(0) // a wall clock an hour on, with no monotonic reading
	if again := s.At("x", real.Add(-time.Second).Round(0), jumped); !again.Equal(at) || again.Sub(real) != -time.Second {
		t.Fatalf("judged %v, then %v after the clock jumped", at, again)
	}
}

func TestSightingsForget(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s := NewSightings(nil)
	for i := range maxSightings {
		s.At(time.Duration(i).String(), t0, t0)
	}
	s.At("new", t0, t0.Add(25*time.Hour))
	if len(s.seen) != 1 {
		t.Fatalf("%d sightings kept, want the new one alone", len(s.seen))
	}
}
