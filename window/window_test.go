package window

import (
	"strings"
	"testing"
	"time"
)

func at(t *testing.T, zone, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestContains(t *testing.T) {
	tests := []struct {
		spec string
		zone string
		at   string
		want bool
	}{
		{"Mon-Fri 02:00-05:00 Europe/Berlin", "Europe/Berlin", "2026-11-23 02:00", true},  // Monday, first minute
		{"Mon-Fri 02:00-05:00 Europe/Berlin", "Europe/Berlin", "2026-11-23 04:59", true},  // last minute
		{"Mon-Fri 02:00-05:00 Europe/Berlin", "Europe/Berlin", "2026-11-23 05:00", false}, // end is excluded
		{"Mon-Fri 02:00-05:00 Europe/Berlin", "Europe/Berlin", "2026-11-22 03:00", false}, // Sunday
		{"Mon-Fri 02:00-05:00 Europe/Berlin", "UTC", "2026-11-23 01:30", true},            // 02:30 in Berlin
		{"Mon-Fri 02:00-05:00 Europe/Berlin", "UTC", "2026-11-23 04:30", false},           // 05:30 in Berlin
		// Daylight saving: the window keeps its wall-clock hours.
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-07-01 00:45", true},  // 02:45 CEST
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-01-01 01:45", true},  // 02:45 CET
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-07-01 01:45", true},  // 03:45 CEST
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-01-01 00:45", false}, // 01:45 CET
		// Spring forward, 2026-03-29: 02:00-03:00 does not exist; the window opens at 03:00.
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-03-29 00:59", false}, // 01:59 CET
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-03-29 01:00", true},  // 03:00 CEST
		// Fall back, 2026-10-25: 02:00-03:00 happens twice, inside the window both times.
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-10-25 00:40", true}, // 02:40 CEST
		{"Daily 02:30-04:00 Europe/Berlin", "UTC", "2026-10-25 01:40", true}, // 02:40 CET
		// Past midnight: belongs to the day it starts on.
		{"Fri 22:00-02:00", "UTC", "2026-11-27 23:00", true},  // Friday
		{"Fri 22:00-02:00", "UTC", "2026-11-28 01:59", true},  // Saturday, early
		{"Fri 22:00-02:00", "UTC", "2026-11-28 22:30", false}, // Saturday night
		{"Fri 22:00-02:00", "UTC", "2026-11-27 01:00", false}, // Friday, early: Thursday's night
		{"Sat,Sun 00:00-24:00", "UTC", "2026-11-29 23:59", true},
		{"Sat,Sun 00:00-24:00", "UTC", "2026-11-30 00:00", false},
		{"Fri-Mon 10:00-11:00", "UTC", "2026-11-29 10:30", true}, // range across the week's end
		{"Fri-Mon 10:00-11:00", "UTC", "2026-11-25 10:30", false},
	}
	for _, tt := range tests {
		t.Run(tt.spec+" at "+tt.at+" "+tt.zone, func(t *testing.T) {
			w, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.Contains(at(t, tt.zone, tt.at)); got != tt.want {
				t.Fatalf("Contains = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{"", "Mon", "Mon 02:00", "Xyz 02:00-03:00", "Mon 2:00-03:00", "Mon 02:00-25:00", "Mon 02:00-02:00", "Mon 02:00-03:00 Mars/Olympus", "Mon 02:00-03:00 UTC extra"} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		}
	}
}

func TestSchedule(t *testing.T) {
	w, _ := Parse("Mon-Fri 02:00-05:00 Europe/Berlin")
	holidays, err := ParseBlackouts(strings.NewReader("# German holidays\n2026-12-24, 2026-12-25\n2026-12-31\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := Schedule{Windows: []Window{w}, Blackouts: holidays}
	tests := []struct {
		at   string
		open bool
		next string
	}{
		{"2026-12-23 03:00", true, "2026-12-23 03:00"},
		{"2026-12-24 03:00", false, "2026-12-28 02:00"}, // Christmas Eve and Day are out, then the weekend
		{"2026-12-23 06:00", false, "2026-12-28 02:00"},
		{"2026-12-31 02:30", false, "2027-01-01 02:00"},
	}
	for _, tt := range tests {
		now := at(t, "Europe/Berlin", tt.at)
		if got := s.Open(now); got != tt.open {
			t.Errorf("Open(%s) = %v, want %v", tt.at, got, tt.open)
		}
		if got, want := s.Next(now), at(t, "Europe/Berlin", tt.next); !got.Equal(want) {
			t.Errorf("Next(%s) = %s, want %s", tt.at, got.In(want.Location()), want)
		}
	}
	if !(Schedule{}).Open(time.Now()) {
		t.Error("a schedule without windows is closed")
	}
	if _, err := ParseBlackouts(strings.NewReader("2026-13-01")); err == nil {
		t.Error("a bad date accepted")
	}
}

func TestSpread(t *testing.T) {
	w, _ := Parse("Mon-Fri 02:00-05:00 Europe/Berlin")
	night, _ := Parse("Fri 22:00-02:00 UTC")
	tests := []struct {
		w      Window
		offset time.Duration
		zone   string
		at     string
		open   bool
		next   string
	}{
		{w, 30 * time.Minute, "Europe/Berlin", "2026-11-23 02:10", false, "2026-11-23 02:30"},
		{w, 30 * time.Minute, "Europe/Berlin", "2026-11-23 02:30", true, "2026-11-23 02:30"},
		{w, 30 * time.Minute, "Europe/Berlin", "2026-11-23 04:59", true, "2026-11-23 04:59"},
		{night, 3 * time.Hour, "UTC", "2026-11-28 00:30", false, "2026-11-28 01:00"}, // past midnight, Saturday early
		{night, 3 * time.Hour, "UTC", "2026-11-28 01:30", true, "2026-11-28 01:30"},
	}
	for _, tt := range tests {
		s := Schedule{Windows: []Window{tt.w}, Offset: tt.offset}
		now := at(t, tt.zone, tt.at)
		if got := s.Open(now); got != tt.open {
			t.Errorf("%s +%s at %s: Open = %v, want %v", tt.w, tt.offset, tt.at, got, tt.open)
		}
		if got, want := s.Next(now), at(t, tt.zone, tt.next); !got.Equal(want) {
			t.Errorf("%s +%s at %s: Next = %s, want %s", tt.w, tt.offset, tt.at, got, want)
		}
	}
	// Offsets are stable, within the spread, and differ between nodes.
	seen := map[time.Duration]bool{}
	for i := range 20 {
		node := "compute-" + string(rune('a'+i))
		o := SpreadOffset(node, time.Hour)
		if o < 0 || o >= time.Hour || o != SpreadOffset(node, time.Hour) {
			t.Fatalf("offset of %s: %s", node, o)
		}
		seen[o] = true
	}
	if len(seen) < 10 {
		t.Fatalf("20 nodes got only %d distinct offsets", len(seen))
	}
	if err := (Schedule{Windows: []Window{w}}).CheckSpread(3 * time.Hour); err == nil {
		t.Fatal("a spread as long as the window accepted")
	}
}
