package lock

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQueueAhead(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	q := Queue{Version: Version}.Join("a", t0).Join("b", t0.Add(time.Second)).Join("c", t0.Add(2*time.Second))
	zones := map[string]string{"a": "rack-1", "b": "rack-2", "c": "rack-1"}
	inRack1 := func(e QueueEntry) bool { return zones[e.Node] == "rack-1" }
	for _, tt := range []struct {
		name string
		q    Queue
		node string
		now  time.Time
		may  func(QueueEntry) bool
		want []string
	}{
		{"the first has nobody ahead", q, "a", t0, nil, nil},
		{"the third waits for both", q, "c", t0.Add(time.Minute), nil, []string{"a", "b"}},
		{"a newcomer waits for all", q, "z", t0.Add(time.Minute), nil, []string{"a", "b", "c"}},
		{"a blocked node holds up nobody", q.Block("a", "health"), "c", t0.Add(time.Minute), nil, []string{"b"}},
		{"a node of a zone kept out holds up nobody", q, "c", t0.Add(time.Minute), inRack1, []string{"a"}},
		{"a turn passes after the grace", q, "c", t0.Add(time.Second + QueueGrace), nil, nil},
		{"a place opened gives a new turn", Queue{Version: Version, Entries: q.Entries, Freed: t0.Add(time.Hour)}, "c", t0.Add(time.Hour + time.Minute), nil, []string{"a", "b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := tt.q.Ahead(tt.node, tt.now, tt.may, nil)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ahead %v, want %v", got, tt.want)
			}
		})
	}
	served := q.Served("c", t0.Add(time.Second+QueueGrace), nil, nil)
	if len(served.Entries) != 2 || served.Entries[0].Blocked != MissedTurn || served.Entries[1].Blocked != MissedTurn {
		t.Fatalf("served past the turns of a and b: %+v", served)
	}
	if again := served.Join("a", t0.Add(time.Hour)); again.Entries[0].Blocked != "" || !again.Entries[0].Since.Equal(t0.Add(time.Hour)) {
		t.Fatalf("a joining again keeps its place, ready, its turn starting now: %+v", again)
	}
	if room := q.WaitRoom("b", t0.Add(time.Hour)); room.Entries[1].Blocked != ForRoom || !room.Entries[1].Since.Equal(t0.Add(time.Hour)) {
		t.Fatalf("a node waiting for its group's reboots keeps its place, blocked, saying when it answered: %+v", room)
	}
	if ahead, _ := q.WaitRoom("a", t0).Ahead("c", t0.Add(time.Minute), nil, nil); !slices.Equal(ahead, []string{"b"}) {
		t.Fatalf("a node waiting for its group's reboots holds up nobody: ahead %v", ahead)
	}
	if left := q.Leave("b"); len(left.Entries) != 2 || left.Entries[1].Node != "c" {
		t.Fatalf("leave: %+v", left)
	}
}

func TestQueueFront(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var q Queue
	zones := map[string]string{}
	for i, n := range []string{"a", "b", "c", "d", "e", "f"} {
		zones[n] = "rack-1"
		if i%2 == 1 {
			zones[n] = "rack-2"
		}
		q = q.Join(n, t0.Add(time.Duration(i)*time.Second))
	}
	held := func(nodes ...string) Record {
		r := Record{Version: Version}
		for _, n := range nodes {
			zone := "rack-1"
			if n == "y" {
				zone = "rack-2"
			}
			r.Holders = append(r.Holders, Holder{Node: n, Zone: zone})
		}
		return r
	}
	for _, tt := range []struct {
		name  string
		q     Queue
		rec   Record
		limit Limit
		nodes int
		want  []string
	}{
		{"a full lock has no front", q, held("x"), One, 6, nil},
		{"one free place: the first, and the next should it miss its turn", q, held(), One, 6, []string{"a", "b"}},
		{"two free places of three", q, held("x"), Limit{N: 3}, 6, []string{"a", "b", "c", "d"}},
		{"a limit lowered below its holders has no front", q, held("x", "y"), One, 6, nil},
		{"blocked nodes are passed over", q.Block("a", "health").Block("c", "window"), held(), One, 6, []string{"b", "d"}},
		{"a node that holds a place already is passed over", q, held(), Limit{N: 2}, 6, []string{"a", "b", "c", "d"}},
		{"a holder in the queue is not woken", q, Record{Version: Version, Holders: []Holder{{Node: "a"}}}, Limit{N: 2}, 6, []string{"b", "c"}},
		{"under auto, one at a time", q, held("x"), Limit{Auto: true}, 6, []string{"a", "b"}},
		{"a share of the group", q, held("x"), Limit{Percent: 50}, 6, []string{"a", "b", "c", "d"}},
		{"only the zone that reboots", q, held("x"), Limit{N: 3, PerZone: 3}, 6, []string{"a", "c", "e"}},
		{"an empty queue", Queue{}, held(), One, 6, nil},
		{"nodes waiting for the group's reboots hear of a place too", q.WaitRoom("a", t0).WaitRoom("b", t0).WaitRoom("c", t0), held(), One, 6, []string{"a", "b", "d", "e"}},
		{"as many of them as of those ready", q.WaitRoom("b", t0).WaitRoom("c", t0).WaitRoom("d", t0).WaitRoom("e", t0), held(), One, 6, []string{"a", "b", "c", "f"}},
		{"none of them while the lock is full", q.WaitRoom("a", t0), held("x"), One, 6, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Front(tt.rec, tt.limit, tt.nodes, zones); !slices.Equal(got, tt.want) {
				t.Fatalf("front %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeQueue(t *testing.T) {
	good, _ := Queue{}.Join("a", time.Unix(0, 0)).Encode()
	if q, err := DecodeQueue(good); err != nil || len(q.Entries) != 1 {
		t.Fatalf("%s: %+v, %v", good, q, err)
	}
	for _, bad := range []string{
		``, `{}`, `{"version":0,"entries":[]}`, `{"version":99,"entries":[]}`,
		`{"version":1,"entries":[{"node":"a","since":"2026-01-01T00:00:00Z"},{"node":"a","since":"2026-01-01T00:00:00Z"}]}`,
		`{"version":1,"entries":[],"extra":1}`, `{"version":1,"entries":[]} trailing`,
	} {
		if _, err := DecodeQueue([]byte(bad)); err == nil || !strings.Contains(err.Error(), "queue") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestQueueBounds: a queue stored past its bound is cut to it at its next write, entries blocked
// by their own gates first, from the end; a node that would pass it does not fit the record (it
// waits in an ask of its own); entries blocked and silent for a day leave at the next join.
func TestQueueBounds(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	q := Queue{Version: Version}
	for i := range 3000 {
		q.Entries = append(q.Entries, QueueEntry{Node: strings.Repeat("n", 40) + time.Duration(i).String(), Since: t0})
	}
	q = q.Block(q.Entries[0].Node, "health").Block(q.Entries[2999].Node, "health")
	data, err := q.Encode()
	if err != nil || len(data) > MaxQueueBytes {
		t.Fatalf("encoded %d bytes (%v), want at most %d", len(data), err, MaxQueueBytes)
	}
	stored, err := DecodeQueue(data)
	if err != nil {
		t.Fatal(err)
	}
	// The blocked go first (they hold up nobody), then the end of the queue.
	if stored.Entries[0].Node != q.Entries[1].Node || stored.Entries[len(stored.Entries)-1].Node != q.Entries[len(stored.Entries)].Node {
		t.Fatalf("cut the wrong entries: first %s, last %+v", stored.Entries[0].Node, stored.Entries[len(stored.Entries)-1])
	}
	if _, ok := RecordOnly(stored, nil, stored.Join("newcomer", t0)); ok {
		t.Fatal("a newcomer fits a record at its bound")
	}
	if _, ok := RecordOnly(stored, nil, stored.Join(stored.Entries[5].Node, t0)); !ok {
		t.Fatal("a node in the record does not fit it")
	}
	old := Queue{Version: Version}.Join("a", t0).Join("b", t0).Block("a", MissedTurn).Block("b", "health")
	if got := old.Join("c", t0.Add(QueueExpiry+time.Second)); len(got.Entries) != 1 || got.Entries[0].Node != "c" {
		t.Fatalf("entries blocked for a day stayed: %+v", got.Entries)
	}
	if got := old.Join("c", t0.Add(QueueExpiry-time.Second)); len(got.Entries) != 3 {
		t.Fatalf("entries blocked for less than a day left: %+v", got.Entries)
	}
}

// TestKeptTurnOnAClockBehind: a node at the front whose clock is behind the releaser's keeps
// its turn as long as it says so (Keep), as the node behind judges it: its entry's time and the
// moment the place opened are of two clocks, each judged by when it was first seen. Compared as
// written, its turn ended QueueGrace after the place opened, however often it kept it, and the
// node behind took its place while it ran (passing it over as gone).
func TestKeptTurnOnAClockBehind(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC) // the reader's clock
	seen := NewSightings(nil)
	behind, ahead := -90*time.Second, 50*time.Second // the front's clock, the releaser's
	q := Queue{Version: Version, Freed: t0.Add(ahead)}.Join("front", t0.Add(behind)).Join("me", t0)
	if got, _ := q.Ahead("me", t0, nil, seen); len(got) != 1 {
		t.Fatalf("as the place opens: ahead %v, want the front", got)
	}
	for _, tt := range []struct {
		after time.Duration // since the place opened, on the reader's clock
		keeps bool          // the front said it keeps its turn just before
		ahead bool
	}{
		{time.Minute, true, true},
		{2 * time.Minute, true, true},
		{3 * time.Minute, true, true},
		{6 * time.Minute, false, false}, // it stopped saying so at 3 minutes: its turn passed
	} {
		now := t0.Add(tt.after)
		if tt.keeps {
			q = q.Keep("front", now.Add(-time.Second).Add(behind))
		}
		got, _ := q.Ahead("me", now, nil, seen)
		if (len(got) == 1) != tt.ahead {
			t.Fatalf("%s after the place opened (kept: %v): ahead %v, want the front ahead: %v", tt.after, tt.keeps, got, tt.ahead)
		}
	}
}

// TestTurnSeenAfterAHoldUp: a run judges at the moment it began (its now) and reads the queue
// after; held up in between (its process paused, Consul slow), it reads the front's turn as the
// front kept it meanwhile. The turn is seen when it was read, by the reader's clock: the next
// run passes the front over only once it stopped keeping its turn. Seen at the held-up run's
// now, a turn kept a moment before the read looked as old as the hold-up was long, and the
// front was marked as having missed its turn while it ran.
func TestTurnSeenAfterAHoldUp(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC) // the held-up run's now
	for _, tt := range []struct {
		name   string
		holdUp time.Duration // from the run's now to its read of the queue
		kept   time.Duration // when the front last kept its turn, from t0
		next   time.Duration // the next run's now, from t0
		missed bool
	}{
		{"no hold-up, kept just before", 0, -time.Second, 30 * time.Second, false},
		{"no hold-up, a turn after it was kept", 0, -time.Second, QueueGrace, true},
		{"a 3-minute hold-up, kept just before the read", 3 * time.Minute, 2*time.Minute + 50*time.Second, 3*time.Minute + time.Second, false},
		{"a 3-minute hold-up, a turn after it was kept", 3 * time.Minute, 2*time.Minute + 50*time.Second, 2*time.Minute + 50*time.Second + QueueGrace, true},
		{"a 3-minute hold-up, kept long before: a turn from the read at most", 3 * time.Minute, -time.Hour, 3*time.Minute + QueueGrace, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := t0.Add(tt.holdUp)
			seen := NewSightings(func() time.Time { return clock })
			q := Queue{Version: Version, Freed: t0.Add(-10 * time.Second)}.Join("front", t0.Add(-time.Hour)).Join("me", t0.Add(-time.Hour))
			q = q.Keep("front", t0.Add(tt.kept))
			if got, _ := q.Ahead("me", t0, nil, seen); len(got) != 1 {
				t.Fatalf("the held-up run: ahead %v, want the front", got)
			}
			clock = t0.Add(tt.next)
			served := q.Served("me", clock, nil, seen)
			if missed := served.Entries[0].Blocked == MissedTurn; missed != tt.missed {
				t.Fatalf("the next run at %s: the front marked as having missed its turn: %v, want %v", tt.next, missed, tt.missed)
			}
		})
	}
}

// TestTurnsAfterAStop: a stop longer than a turn ends no turn. The front could not keep its turn
// while the fleet was stopped (no node runs then), so the first node to run after the resume,
// one far back, would take the place and pass it over. As a process that saw the stop judges
// them, turns begin no earlier than the moment it first saw the stop lifted, and none passes
// while it sees the group halted; a process that never saw the stop judges them as written.
func TestTurnsAfterAStop(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	q := Queue{Version: Version, Freed: t0}.Join("front", t0).Join("me", t0)
	for _, tt := range []struct {
		name string
		// stops are the reads of the stop flags, at offsets from t0: set or not.
		stops []stopRead
		at    time.Duration
		ahead bool
	}{
		{"no stop, within the turn", nil, QueueGrace - time.Second, true},
		{"no stop, the turn passed", nil, QueueGrace, false},
		{"halted as it reads", []stopRead{{10 * time.Second, true}}, time.Hour, true},
		{"a 5-minute stop, just after", []stopRead{{10 * time.Second, true}, {5 * time.Minute, false}}, 5*time.Minute + time.Second, true},
		{"a 5-minute stop, a turn after", []stopRead{{10 * time.Second, true}, {5 * time.Minute, false}}, 5*time.Minute + QueueGrace, false},
		{"lifted seen again later", []stopRead{{10 * time.Second, true}, {5 * time.Minute, false}, {6 * time.Minute, false}}, 5*time.Minute + QueueGrace, false},
		{"a second stop", []stopRead{{10 * time.Second, true}, {5 * time.Minute, false}, {6 * time.Minute, true}, {20 * time.Minute, false}}, 21 * time.Minute, true},
		{"never stopped, read clear", []stopRead{{10 * time.Second, false}}, QueueGrace, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen := NewSightings(nil)
			// The process saw the queue as the place opened.
			q.Ahead("me", t0, nil, seen)
			for _, s := range tt.stops {
				seen.Stopped(s.set, t0.Add(s.at))
			}
			got, _ := q.Ahead("me", t0.Add(tt.at), nil, seen)
			if (len(got) == 1) != tt.ahead {
				t.Fatalf("at %s: ahead %v, want the front ahead: %v", tt.at, got, tt.ahead)
			}
			served := q.Served("me", t0.Add(tt.at), nil, seen)
			if missed := served.Entries[0].Blocked == MissedTurn; missed == tt.ahead {
				t.Fatalf("at %s: the front marked as having missed its turn: %v, want %v", tt.at, missed, !tt.ahead)
			}
		})
	}
	var none *Sightings
	none.Stopped(true, t0) // a one-off command's: nothing to remember
	if got, _ := q.Ahead("me", t0.Add(QueueGrace), nil, none); len(got) != 0 {
		t.Fatalf("a one-off command judged a turn past as not past: %v", got)
	}
}

// TestTurnsAfterALimitChange: a limit changed by hand (or a bound per zone lifted) opens places
// that no release noted in the queue. The nodes before the reader could not go until then, and
// their turns did not run: as a process that saw the change judges them, turns begin no earlier
// than the moment it first saw it. Judged from the last release, an hour before, every turn was
// over the moment the places opened, and the first node to look took one, passing over every
// node before it.
func TestTurnsAfterALimitChange(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	q := Queue{Version: Version, Freed: t0.Add(-time.Hour)}.Join("front", t0.Add(-time.Hour)).Join("me", t0.Add(-time.Hour))
	for _, tt := range []struct {
		name   string
		limits []limitRead // the reads of the group's limit, at offsets from t0
		at     time.Duration
		ahead  bool
	}{
		{"no limit read", nil, 0, false},
		{"the same limit read again", []limitRead{{-time.Hour, "1"}, {0, "1"}}, time.Second, false},
		{"the first limit read is no change", []limitRead{{0, "2"}}, time.Second, false},
		{"raised by hand, just after", []limitRead{{-time.Hour, "1"}, {0, "2"}}, time.Second, true},
		{"raised by hand, a turn after", []limitRead{{-time.Hour, "1"}, {0, "2"}}, QueueGrace, false},
		{"a bound per zone lifted, just after", []limitRead{{-time.Hour, "3 per-zone=1"}, {0, "2"}}, time.Minute, true},
		{"changed, then read again unchanged", []limitRead{{-time.Hour, "1"}, {0, "2"}, {time.Minute, "2"}}, QueueGrace, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen := NewSightings(nil)
			q.Ahead("me", t0.Add(-time.Hour), nil, seen)
			for _, l := range tt.limits {
				seen.Limited(l.limit, t0.Add(l.at))
			}
			now := t0.Add(tt.at)
			if got, _ := q.Ahead("me", now, nil, seen); (len(got) == 1) != tt.ahead {
				t.Fatalf("at %s: ahead %v, want the front ahead: %v", tt.at, got, tt.ahead)
			}
			served := q.Served("me", now, nil, seen)
			if missed := served.Entries[0].Blocked == MissedTurn; missed == tt.ahead {
				t.Fatalf("at %s: the front marked as having missed its turn: %v, want %v", tt.at, missed, !tt.ahead)
			}
		})
	}
}

type limitRead struct {
	at    time.Duration
	limit string
}

type stopRead struct {
	at  time.Duration
	set bool
}
