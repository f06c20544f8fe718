package lock

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0Asks = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// stored is a group's queue as Consul would hold it: its record and its asks, and the index of
// the last write.
type stored struct {
	rec   Queue
	asks  []Ask
	index uint64
}

func (s stored) read() Queue { return Merged(s.rec, s.asks) }

// write applies w to s, as a transaction would.
func (s stored) write(w QueueWrite) stored {
	s.index++
	out := stored{rec: s.rec, index: s.index}
	if w.Record != nil {
		data, err := w.Record.Encode()
		if err != nil {
			panic(err)
		}
		if out.rec, err = DecodeQueue(data); err != nil {
			panic(err)
		}
	}
	gone := map[string]bool{}
	for _, a := range slices.Concat(w.Fold, w.Drop) {
		gone[a.Entry.Node] = true
	}
	for _, a := range s.asks {
		for _, r := range w.Rewrite {
			if r.Entry.Node == a.Entry.Node {
				a.Entry, a.Index = r.Entry, s.index
			}
		}
		if !gone[a.Entry.Node] {
			out.asks = append(out.asks, a)
		}
	}
	if w.Create != nil {
		out.asks = append(out.asks, Ask{Entry: *w.Create, Created: s.index, Index: s.index})
	}
	return out
}

func names(q Queue) string {
	var out []string
	for _, e := range q.Entries {
		out = append(out, e.Node+map[bool]string{true: "!", false: ""}[e.Blocked != ""])
	}
	return strings.Join(out, " ")
}

func asked(nodes ...string) []Ask {
	var out []Ask
	for i, n := range nodes {
		out = append(out, Ask{Entry: QueueEntry{Node: n, Since: t0Asks}, Created: uint64(10 + i), Index: uint64(10 + i)})
	}
	return out
}

func TestMergedQueue(t *testing.T) {
	rec := Queue{Version: Version}.Join("a", t0Asks).Join("b", t0Asks)
	asks := asked("c", "d", "b")
	asks[0].Created = 20 // created after d
	if got := names(Merged(rec, asks)); got != "a b d c" {
		t.Fatalf("merged %q, want the record, then the asks of nodes it does not hold, in the order created", got)
	}
}

// TestPlanQueue: each change of the queue is written as the fewest writes that read back as it.
func TestPlanQueue(t *testing.T) {
	rec := Queue{Version: Version}.Join("a", t0Asks)
	two := stored{rec: rec, asks: asked("b", "c"), index: 20}
	q := two.read()
	for _, tt := range []struct {
		name   string
		s      stored
		want   Queue
		budget int
		record string // "-": not written
		ops    int
		read   string // "": as want
	}{
		{"a node joining creates its ask alone", two, q.Join("d", t0Asks), 60, "-", 1, ""},
		{"the first node joins an empty queue as an ask", stored{}, Queue{}.Join("a", t0Asks), 60, "-", 1, ""},
		{"a node leaving from the asks deletes its own", two, q.Leave("b"), 60, "-", 1, ""},
		{"a node blocked in the asks rewrites its own", two, q.Block("c", "health"), 60, "-", 1, ""},
		{"a place freed writes the record and folds the asks", two, freed(q), 60, "a b c", 4, ""},
		{"folds within the budget", two, freed(q), 2, "a b", 2, ""},
		{"a fold takes over a rewrite", two, freed(q.Block("b", "health")), 60, "a b! c", 4, ""},
		{"a record change beside a join folds the asks and the join", two, freed(q).Join("d", t0Asks), 60, "a b c d", 4, ""},
		{"a budget of nothing writes the record alone", two, freed(q.Leave("a")), 0, "", 0, "b c"},
		{"the front leaving the record folds the rest", two, q.Leave("a"), 60, "b c", 4, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := PlanQueue(tt.s.rec, tt.s.asks, tt.want, tt.budget)
			record := "-"
			if w.Record != nil {
				record = names(*w.Record)
			}
			if record != tt.record || w.Ops() != tt.ops {
				t.Fatalf("record %q with %d operations for the asks, want %q with %d: %+v", record, w.Ops(), tt.record, tt.ops, w)
			}
			read := names(tt.s.write(w).read())
			if want := cmpOr(tt.read, names(tt.want)); read != want {
				t.Fatalf("reads back as %q, want %q", read, want)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func freed(q Queue) Queue {
	q.Freed = t0Asks.Add(time.Minute)
	return q
}

// TestPlanQueueBound: a group of 10,000 nodes waits whole, in order: a node joins behind them
// with its ask alone, and the record takes in the front by folds, never past its bound, the rest
// staying in the asks.
func TestPlanQueueBound(t *testing.T) {
	const nodes = 10000
	s := stored{index: 2 * nodes}
	for i := range nodes {
		s.asks = append(s.asks, Ask{Entry: QueueEntry{Node: fmt.Sprintf("%s%04d", strings.Repeat("n", 60), i), Since: t0Asks}, Created: uint64(i + 1), Index: uint64(i + 1)})
	}
	if w := PlanQueue(s.rec, s.asks, s.read().Join("x", t0Asks), 60); w.Record != nil || w.Ops() != 1 {
		t.Fatalf("a join behind %d asks: %+v", nodes, w)
	}
	want := s.read()
	for i := range 100 {
		want.Freed = t0Asks.Add(time.Duration(i) * time.Second)
		s = s.write(PlanQueue(s.rec, s.asks, want, 60))
	}
	data, _ := s.rec.Encode()
	if len(data) > MaxQueueBytes || len(s.asks) == 0 || len(s.rec.Entries)+len(s.asks) != nodes {
		t.Fatalf("after folds: a record of %d entries (%d bytes), %d asks", len(s.rec.Entries), len(data), len(s.asks))
	}
	if got := s.read(); !got.Equal(want) {
		t.Fatalf("the folds changed the queue")
	}
}

// TestPlanQueueReadsBack: whatever the changes, with a budget that suffices, the queue reads back
// as the change made it, and an ask is deleted only when the record holds its node or its node
// left; with any budget, no node waiting is lost and none that left comes back.
func TestPlanQueueReadsBack(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	nodes := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for round := range 300 {
		var s stored
		budget := []int{0, 1, 3, 60}[round%4]
		for step := range 40 {
			now := t0Asks.Add(time.Duration(step) * time.Second)
			q := s.read()
			n := nodes[r.IntN(len(nodes))]
			var want Queue
			switch r.IntN(6) {
			case 0, 1:
				want = q.Join(n, now)
			case 2:
				want = q.Leave(n)
			case 3:
				want = q.Block(n, "health")
			case 4:
				want = q.Keep(n, now)
			default:
				want = freed(q.Served(n, now, nil, nil))
				want.Freed = now
			}
			w := PlanQueue(s.rec, s.asks, want, budget)
			for _, a := range w.Fold {
				if _, in := w.Record.Place(a.Entry.Node); w.Record == nil || !in {
					t.Fatalf("round %d step %d: %s's ask folded into a record without it", round, step, a.Entry.Node)
				}
			}
			s = s.write(w)
			got := s.read()
			if budget >= 60 && !got.Equal(want) {
				t.Fatalf("round %d step %d: reads %q, want %q", round, step, names(got), names(want))
			}
			for _, e := range want.Entries {
				if _, in := got.Place(e.Node); !in {
					t.Fatalf("round %d step %d (budget %d): %s lost: %q, want %q", round, step, budget, e.Node, names(got), names(want))
				}
			}
			if budget > 0 && len(got.Entries) != len(want.Entries) {
				t.Fatalf("round %d step %d (budget %d): reads %q, want %q", round, step, budget, names(got), names(want))
			}
		}
	}
}

// TestRecordOnly: a writer that may not write the asks writes the record alone, the queue whole
// in it (the asks it holds hidden by it); a node joining goes into the record while it has room.
func TestRecordOnly(t *testing.T) {
	s := stored{rec: Queue{Version: Version}.Join("a", t0Asks), asks: asked("b", "c"), index: 20}
	for _, want := range []Queue{s.read().Join("d", t0Asks), s.read().Block("b", "health")} {
		w, ok := RecordOnly(s.rec, s.asks, want)
		if !ok || w.Record == nil || w.Ops() != 0 || names(s.write(w).read()) != names(want) {
			t.Fatalf("%q: %+v, %v", names(want), w, ok)
		}
	}
	if w, ok := RecordOnly(s.rec, s.asks, s.read()); !ok || w.Record != nil {
		t.Fatalf("no change: %+v, %v", w, ok)
	}
	full := Queue{Version: Version}
	for size := sizeOf(full); size < MaxQueueBytes-20; {
		e := QueueEntry{Node: fmt.Sprintf("%s%05d", strings.Repeat("n", 40), len(full.Entries)), Since: t0Asks}
		full.Entries = append(full.Entries, e)
		size += sizeOf(e) + 1
	}
	if _, ok := RecordOnly(full, nil, full.Join("x", t0Asks)); ok {
		t.Fatal("a join into a record at its bound")
	}
}

func TestDecodeAsk(t *testing.T) {
	data, err := EncodeAsk(QueueEntry{Node: "a", Since: t0Asks.In(time.FixedZone("x", 3600))})
	if err != nil || string(data) != `{"node":"a","since":"2026-12-07T12:00:00Z"}` {
		t.Fatalf("%s, %v", data, err)
	}
	if e, err := DecodeAsk(data); err != nil || e.Node != "a" || !e.Since.Equal(t0Asks) {
		t.Fatalf("%+v, %v", e, err)
	}
	for _, bad := range []string{``, `{}`, `{"node":""}`, `{"node":"a","extra":1}`, `{"node":"a"} {}`, `[]`} {
		if _, err := DecodeAsk([]byte(bad)); err == nil || !strings.Contains(err.Error(), "ask") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
