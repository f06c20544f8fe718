package history

import (
	"testing"
	"time"
)

func TestAppendIsBounded(t *testing.T) {
	var l Log
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for i := range MaxEntries + 10 {
		l = l.Append(Entry{Node: "n", End: t0.Add(time.Duration(i) * time.Minute), Outcome: Finished})
	}
	if len(l.Entries) != MaxEntries || !l.Entries[0].End.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("%d entries, first ends %s", len(l.Entries), l.Entries[0].End)
	}
	data, _ := l.Encode()
	back, err := Decode(data)
	if err != nil || len(back.Entries) != MaxEntries {
		t.Fatalf("round trip: %d entries, %v", len(back.Entries), err)
	}
}

func TestBreaker(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	fail := func(ago time.Duration) Entry { return Entry{Node: "n", End: t0.Add(-ago), Outcome: TaskFailed} }
	ok := func(ago time.Duration) Entry { return Entry{Node: "n", End: t0.Add(-ago), Outcome: Finished} }
	tests := []struct {
		name    string
		breaker string
		entries []Entry
		trips   bool
	}{
		{"off", "off", []Entry{fail(1), fail(2), fail(3)}, false},
		{"under", "3/1h", []Entry{fail(time.Minute), fail(2 * time.Minute), ok(3 * time.Minute)}, false},
		{"at", "3/1h", []Entry{fail(time.Minute), fail(2 * time.Minute), fail(59 * time.Minute)}, true},
		{"one too old", "3/1h", []Entry{fail(time.Minute), fail(2 * time.Minute), fail(61 * time.Minute)}, false},
		{"deadline misses count", "2/30m", []Entry{{Node: "a", End: t0.Add(-time.Minute), Outcome: DeadlinePassed}, fail(5 * time.Minute)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBreaker(tt.breaker)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := b.Trips(Log{Entries: tt.entries}, t0); got != tt.trips {
				t.Fatalf("Trips = %v, want %v", got, tt.trips)
			}
		})
	}
	for _, bad := range []string{"3", "x/1h", "0/1h", "3/soon", "3/-1h"} {
		if _, err := ParseBreaker(bad); err == nil {
			t.Errorf("ParseBreaker(%q) accepted", bad)
		}
	}
}
