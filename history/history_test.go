package history

import (
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
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

func TestAppendIsBoundedInBytes(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	entry := func(i int, detail string) Entry {
		return Entry{Node: "n", Start: t0, End: t0.Add(time.Duration(i) * time.Minute), Outcome: TaskFailed, Detail: detail}
	}
	entries := func(n int, detail string) []Entry {
		var out []Entry
		for i := range n {
			out = append(out, entry(i, detail))
		}
		return out
	}
	tests := []struct {
		name     string
		log      []Entry
		add      Entry
		wantKept int // -1: as many as fit
	}{
		{"small log kept whole", entries(5, "exit 1"), entry(99, "exit 2"), 6},
		{"long details", entries(MaxEntries, strings.Repeat("d", clip.Max)), entry(999, strings.Repeat("d", clip.Max)), -1},
		{"details that JSON escapes", entries(MaxEntries, strings.Repeat("<", clip.Max)), entry(999, strings.Repeat("<", clip.Max)), -1},
		{"a new entry far too long", entries(3, "exit 1"), entry(99, strings.Repeat("é", 300<<10)), 4},
		{"an oversized log recovers", append([]Entry{entry(0, strings.Repeat("x", 500<<10))}, entries(3, "exit 1")...), entry(99, "exit 2"), 4},
		{"an oversized newest entry goes too", append(entries(3, "exit 1"), entry(50, strings.Repeat("x", 500<<10))), entry(99, "exit 2"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Log{Version: 1, Entries: tt.log}.Append(tt.add)
			data, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if len(data) > MaxBytes {
				t.Fatalf("encoded in %d bytes, more than %d", len(data), MaxBytes)
			}
			last := l.Entries[len(l.Entries)-1]
			if !last.End.Equal(tt.add.End) || last.Detail != clip.Text(tt.add.Detail) {
				t.Fatalf("the new entry is not the last, as given (cut): %+v", last.End)
			}
			all := append(append([]Entry(nil), tt.log...), tt.add)
			kept := len(l.Entries)
			if tt.wantKept >= 0 && kept != tt.wantKept {
				t.Fatalf("kept %d entries, want %d", kept, tt.wantKept)
			}
			for i, e := range l.Entries {
				if !e.End.Equal(all[len(all)-kept+i].End) {
					t.Fatalf("entry %d is not the one of the newest that fit", i)
				}
			}
			if tt.wantKept < 0 {
				// As many as fit: one more would not.
				older := all[len(all)-kept-1]
				older.Detail = clip.Text(older.Detail)
				more, _ := Log{Entries: append([]Entry{older}, l.Entries...)}.Encode()
				if len(more) <= MaxBytes {
					t.Fatalf("dropped an entry that fit (%d bytes with it)", len(more))
				}
			}
			if _, err := Decode(data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAFinishedRebootRecordedAgainIsHeldOnce: a run killed after it recorded a reboot and
// before it gave its place back finishes it again at its next run and records it again: the log
// holds it once, with the later end; other entries, and finished reboots of other starts or
// nodes, are each kept.
func TestAFinishedRebootRecordedAgainIsHeldOnce(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	done := func(node string, start, end int) Entry {
		return Entry{Node: node, Start: t0.Add(time.Duration(start) * time.Minute), End: t0.Add(time.Duration(end) * time.Minute), Outcome: Finished}
	}
	failed := func(node string, start, end int) Entry {
		e := done(node, start, end)
		e.Outcome = TaskFailed
		return e
	}
	tests := []struct {
		name string
		log  []Entry
		add  Entry
		want int
	}{
		{"the same reboot again", []Entry{done("n1", 0, 5)}, done("n1", 0, 7), 1},
		{"the same reboot again, others between", []Entry{done("n1", 0, 5), done("n2", 1, 6)}, done("n1", 0, 7), 2},
		{"another reboot of the node", []Entry{done("n1", 0, 5)}, done("n1", 10, 15), 2},
		{"the same start of another node", []Entry{done("n1", 0, 5)}, done("n2", 0, 5), 2},
		{"failures are each kept", []Entry{failed("n1", 0, 5)}, failed("n1", 0, 6), 2},
	}
	for _, tt := range tests {
		l := Log{Version: 1, Entries: tt.log}.Append(tt.add)
		if len(l.Entries) != tt.want {
			t.Errorf("%s: %d entries, want %d: %+v", tt.name, len(l.Entries), tt.want, l.Entries)
		}
		if last := l.Entries[len(l.Entries)-1]; !last.End.Equal(tt.add.End) {
			t.Errorf("%s: the entry added is not the last: %+v", tt.name, last)
		}
	}
}
