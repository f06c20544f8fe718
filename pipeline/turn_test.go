package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestStayGreenKeepsTheTurn: a node whose turn it is, staying green for longer than a turn
// lasts (five minutes, docs/configuration.md's example), keeps its turn all along: the node behind it,
// looking at any moment of it, waits; and it takes the place once green long enough.
func TestStayGreenKeepsTheTurn(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st := pipelinetest.NewStore("default", "n1")
	n1 := newSkewedNode(t, st, "n1", t0)
	n1.p.StayGreen = 5 * time.Minute
	n2 := newSkewedNode(t, st, "n2", t0)
	q := lock.Queue{Version: lock.Version}.Join("n1", t0.Add(-time.Hour)).Join("n2", t0.Add(-time.Hour))
	q.Freed = t0
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))

	var looks int
	inside := false
	st.AfterWrite = func(int) {
		if _, holds := st.Fleet().Holders["n1"]; inside || holds {
			return
		}
		inside = true
		defer func() { inside = false }()
		// n2 looks whenever n1 writes, at n1's time.
		n2.clock.Set(n1.clock.Now())
		if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
			t.Errorf("n2 at %s of n1's stay-green: %v, want it to wait for n1's turn", n1.clock.Now().Sub(t0), err)
		}
		looks++
	}
	res, err := n1.p.Run(ctx)
	st.AfterWrite = nil
	if err != nil || res.Outcome != pipeline.RebootStarted {
		t.Fatalf("n1 after staying green: %v %v", res.Outcome, err)
	}
	if want := int(n1.p.StayGreen / lock.KeepEvery); looks < want {
		t.Fatalf("n1 kept its turn %d times in %s, want every %s", looks, n1.p.StayGreen, lock.KeepEvery)
	}
}

// TestWaitingNodeAnswers: a node that finds a place free but others before it (it was told of
// the place, or just looks) says in the queue that it is there (its entry's Since moves): the
// process that told it then does not pass over it. It says so once within lock.AnswerWithin,
// however often it looks.
func TestWaitingNodeAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st := pipelinetest.NewStore("default", "n2")
	n2 := newSkewedNode(t, st, "n2", t0)
	q := lock.Queue{Version: lock.Version}.Join("n1", t0.Add(-time.Hour)).Join("n2", t0.Add(-time.Hour))
	q.Freed = t0
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))
	since := func() time.Time {
		got := queueIn(t, st)
		i, _ := got.Place("n2")
		return got.Entries[i].Since
	}
	for _, tt := range []struct {
		at   time.Duration
		want time.Duration // n2's Since after its run, from t0
	}{
		{0, 0},
		{lock.AnswerWithin / 2, 0},
		{lock.AnswerWithin, lock.AnswerWithin},
	} {
		n2.clock.Set(t0.Add(tt.at))
		if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
			t.Fatalf("at %s: %v", tt.at, err)
		}
		if got := since(); !got.Equal(t0.Add(tt.want)) {
			t.Fatalf("at %s: n2's entry says %s, want %s", tt.at, got.Sub(t0), tt.want)
		}
	}
	woke := []lock.QueueEntry{{Node: "n2", Since: t0.Add(-time.Hour)}}
	if next, err := place.PassTurns(ctx, st, n2.p.Logger, woke, 4, time.Now()); err != nil || len(next) != 0 {
		t.Fatalf("a pass over n2, which answered: %v %v", next, err)
	}
	if got := queueIn(t, st); got.Entries[1].Blocked != "" {
		t.Fatalf("n2 passed over although it answered: %+v", got.Entries)
	}
}

// TestPassTurns: a pass marks the nodes woken that did not answer (still as woken: ready, the
// same Since, no place) as having missed their turn, while a place is free, and tells the next;
// it leaves alone those that answered, took the place or were blocked by their own gates, and
// does nothing once the lock is full. Under a stop flag nobody answers, so nobody is passed: the
// pass is put off (it returns the nodes it was to pass) until they had the time to answer from
// the moment the caller saw the stop lifted.
func TestPassTurns(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	base := lock.Queue{Version: lock.Version, Freed: t0}.Join("a", t0.Add(-time.Hour)).Join("b", t0.Add(-time.Hour)).Join("c", t0.Add(-time.Hour)).Join("d", t0.Add(-time.Hour))
	woke := []lock.QueueEntry{base.Entries[0], base.Entries[1]}
	for _, tt := range []struct {
		name  string
		queue lock.Queue
		held  bool   // the lock is full
		stop  string // a stop flag set: "fleet" or "group"
		// lifted is how long before the pass the caller saw a stop lifted (0: it saw none).
		lifted time.Duration
		passed []string
		next   []string
	}{
		{"neither answered: both passed, the next two told", base, false, "", 0, []string{"a", "b"}, []string{"c", "d"}},
		{"a answered: b passed", base.Keep("a", t0.Add(time.Second)), false, "", 0, []string{"b"}, []string{"c", "d"}},
		{"a blocked by its own gates, b took the place: nothing to pass", base.Block("a", "health").Leave("b"), false, "", 0, nil, nil},
		{"the lock full meanwhile: nothing passed", base, true, "", 0, nil, nil},
		{"the fleet stopped: nobody answers, nobody is passed yet", base, false, "fleet", 0, nil, []string{"a", "b"}},
		{"the group stopped: nobody answers, nobody is passed yet", base, false, "group", 0, nil, []string{"a", "b"}},
		{"a stop lifted just now: nobody is passed yet", base, false, "", lock.AnswerWithin - time.Second, nil, []string{"a", "b"}},
		{"a stop lifted a time to answer ago: both passed", base, false, "", lock.AnswerWithin, []string{"a", "b"}, []string{"c", "d"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := pipelinetest.NewStore("default", "x")
			data, _ := tt.queue.Encode()
			st.Put("groups/default/queue", string(data))
			if tt.held {
				st.PutLock(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "z", Phase: lock.Preparing, Since: t0}}})
			}
			switch tt.stop {
			case "fleet":
				st.SetStop("upgrade", true)
			case "group":
				st.SetGroupStop("group default: upgrade", true)
			}
			now, seen := t0.Add(time.Minute), lock.NewSightings(nil)
			if tt.lifted > 0 {
				seen.Stopped(true, t0)
				seen.Stopped(false, now.Add(-tt.lifted))
			}
			next, err := place.PassTurns(ctx, place.Sighted(st, seen), slog.New(slog.DiscardHandler), woke, 4, now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range queueIn(t, st).Entries {
				if e.Blocked == lock.MissedTurn {
					got = append(got, e.Node)
				}
			}
			var told []string
			for _, e := range next {
				told = append(told, e.Node)
			}
			if !slices.Equal(got, tt.passed) || !slices.Equal(told, tt.next) {
				t.Fatalf("passed %v and told %v, want %v and %v", got, told, tt.passed, tt.next)
			}
		})
	}
}

// TestOwnWakeIsNotFollowed: a node whose own write brings it to the queue's front (it joins as
// a place opens) is told of the place like any, but its run does not follow itself: its daemon
// would pass over its own entry, which it does not rewrite within the time to answer.
func TestOwnWakeIsNotFollowed(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	st := pipelinetest.NewStore("default", "n2")
	// A place is free; head's turn to take it runs. n2 asks: it joins behind head, at the front.
	q := lock.Queue{Version: lock.Version, Freed: t0}.Join("head", t0.Add(-time.Hour))
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))
	n2 := newSkewedNode(t, st, "n2", t0)
	res, err := n2.p.Run(context.Background())
	if !errors.Is(err, lock.ErrQueued) {
		t.Fatalf("n2 behind head: %v", err)
	}
	if _, in := queueIn(t, st).Place("n2"); !in {
		t.Fatal("n2 did not join the queue")
	}
	for _, e := range res.Seen.Woke {
		if e.Node == "n2" {
			t.Fatalf("n2's run follows its own wake: %+v", res.Seen.Woke)
		}
	}
}

// TestToldAnswersAtOnce: a node woken for a place (its turn key said so) answers in the queue
// whenever the nodes before it go first, however lately it last said it was there; a run it was
// not told of answers at most once an answer's time. A node that answered just before a wake
// and not after it would be passed over as gone while its daemon ran.
func TestToldAnswersAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name    string
		told    bool
		last    time.Duration // how long ago its entry last said it was there
		answers bool
	}{
		{"told, having said so 5 s ago", true, 5 * time.Second, true},
		{"not told, having said so 5 s ago", false, 5 * time.Second, false},
		{"not told, having said so 15 s ago", false, 15 * time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			now := m.clock.Now()
			q := lock.Queue{Version: lock.Version}.Join("n2", now.Add(-time.Minute)).Join("n1", now.Add(-time.Minute)).Keep("n1", now.Add(-tt.last))
			data, _ := q.Encode()
			m.store.Put("groups/default/queue", string(data))
			m.store.SetTrigger("n1", "kernel", true)
			ctx := t.Context()
			if tt.told {
				ctx = pipeline.Told(ctx)
			}
			before := m.store.Writes()
			if _, err := m.run(ctx); !errors.Is(err, lock.ErrQueued) {
				t.Fatalf("%v, want to wait for n2 in the queue", err)
			}
			if answered := m.store.Writes() > before; answered != tt.answers {
				t.Fatalf("answered %v, want %v", answered, tt.answers)
			}
		})
	}
}

// TestLimitRaisedByHandKeepsTheTurn: a limit key written by hand (not with rebootmgr limit, which
// notes the places it opens in the queue) opens a place no release noted. n2, behind head, saw
// head's turn an hour ago, before r took the place; it sees the change first: head's turn
// begins then, so n2 waits for it rather than take the place and pass head over; once head's
// turn from the change passed, n2 goes.
func TestLimitRaisedByHandKeepsTheTurn(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := t.Context()
	st := pipelinetest.NewStore("default", "n2")
	q := lock.Queue{Version: lock.Version, Freed: t0.Add(-time.Hour)}.Join("head", t0.Add(-time.Hour)).Join("n2", t0.Add(-time.Hour))
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))
	n2 := newSkewedNode(t, st, "n2", t0.Add(-time.Hour))
	if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
		t.Fatalf("n2 behind head, a place just freed: %v", err)
	}
	st.PutLock(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "r", Phase: lock.Rebooting, Since: t0.Add(-time.Minute), Updated: t0}}})
	f, _ := lock.Fleet{Version: lock.Version}.With("r", "default").Encode()
	st.Put("holders", string(f))
	n2.clock.Set(t0)
	if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrFull) {
		t.Fatalf("n2 under a full lock: %v", err)
	}
	st.SetLimitSpec("2")
	n2.clock.Set(t0.Add(time.Second))
	if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
		t.Fatalf("n2 just after the limit was raised took head's place: %v", err)
	}
	if q := queueIn(t, st); q.Entries[0].Node != "head" || q.Entries[0].Blocked != "" {
		t.Fatalf("head marked: %+v", q.Entries)
	}
	n2.clock.Set(t0.Add(time.Second + lock.QueueGrace))
	if res, err := n2.p.Run(ctx); err != nil || res.Outcome != pipeline.RebootStarted {
		t.Fatalf("n2 once head's turn from the change passed: %v %v", res.Outcome, err)
	}
}
