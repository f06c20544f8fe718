package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/monotonic"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// skewedNode is a daemon's pipeline on a node whose clock is off by some offset from the
// others': its own clock, its own memory of the times others wrote.
type skewedNode struct {
	name  string
	clock *pipelinetest.Clock
	p     *pipeline.Pipeline
}

func newSkewedNode(t *testing.T, st *pipelinetest.Store, name string, now time.Time) *skewedNode {
	t.Helper()
	n := &skewedNode{name: name, clock: pipelinetest.NewClock(now)}
	h := &pipelinetest.Health{}
	h.Set(pipelinetest.Service("galera", nil, "n1", "n2", "n3", "n4"))
	n.p = &pipeline.Pipeline{
		Config:    pipeline.Config{Node: name, CheckTriggers: true, Deadline: 30 * time.Minute},
		Store:     st,
		Health:    h,
		Tasks:     &pipelinetest.Tasks{},
		Rebooter:  &pipelinetest.Rebooter{},
		Clock:     n.clock,
		BootID:    func() (string, error) { return "boot-" + name, nil },
		Note:      pipeline.RebootNote(filepath.Join(t.TempDir(), "note")),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sightings: lock.NewSightings(n.clock.Now),
	}
	st.SetTrigger(name, "", true)
	return n
}

// release gives node's place back as the pipeline does, at the time of its own clock.
func release(t *testing.T, st *pipelinetest.Store, node string, now time.Time) {
	t.Helper()
	_, _, err := place.ChangeLock(t.Context(), st, slog.New(slog.DiscardHandler), func(v place.View) (place.Change, error) {
		return place.ReleaseIn(v, node, now), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestClockSkew: the queue's turns and a holder's deadline are written with one node's clock and
// judged by another's. Each comparison is bounded by when the judging daemon saw the time (see
// lock.Sightings): a releaser an hour ahead does not keep a dead node's turn for an hour, one ten
// minutes behind does not end a live node's turn before it began, and a rebooting node forty
// minutes behind does not stop its group as its reboot begins.
func TestClockSkew(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	// queued puts nodes in the queue (asked in that order a while ago) and r in the lock.
	queued := func(st *pipelinetest.Store, nodes ...string) {
		q := lock.Queue{Version: lock.Version}
		for i, n := range nodes {
			q = q.Join(n, t0.Add(-time.Hour+time.Duration(i)*time.Second))
		}
		data, _ := q.Encode()
		st.Put("groups/default/queue", string(data))
		st.PutLock(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "r", Phase: lock.Finishing, Since: t0.Add(-time.Hour), Updated: t0}}})
		f, _ := lock.Fleet{Version: lock.Version}.With("r", "default").Encode()
		st.Put("holders", string(f))
	}

	t.Run("a releaser an hour ahead: a dead node's turn lasts the turn", func(t *testing.T) {
		st := pipelinetest.NewStore("default", "n2")
		queued(st, "dead", "n2")
		n2 := newSkewedNode(t, st, "n2", t0)
		release(t, st, "r", t0.Add(time.Hour))
		res, err := n2.p.Run(ctx)
		if !errors.Is(err, lock.ErrQueued) {
			t.Fatalf("n2 behind dead, just freed: %v", err)
		}
		if res.Recheck.After(t0.Add(lock.QueueGrace)) {
			t.Fatalf("n2 looks again at %v, after the turn that began when it saw the place open (%v)", res.Recheck, t0.Add(lock.QueueGrace))
		}
		n2.clock.Set(t0.Add(lock.QueueGrace + time.Second))
		if res, err := n2.p.Run(ctx); err != nil || res.Outcome != pipeline.RebootStarted {
			t.Fatalf("n2 once dead's turn passed: %v %v", res.Outcome, err)
		}
	})

	t.Run("a releaser ten minutes behind: a live node's turn is not over before it began", func(t *testing.T) {
		st := pipelinetest.NewStore("default", "n2")
		queued(st, "head", "n2")
		n2 := newSkewedNode(t, st, "n2", t0)
		release(t, st, "r", t0.Add(-10*time.Minute))
		res, err := n2.p.Run(ctx)
		if !errors.Is(err, lock.ErrQueued) || res.Recheck.Before(t0.Add(lock.QueueGrace-lock.Skew)) {
			t.Fatalf("n2 overtook head's turn: %v, recheck %v", err, res.Recheck)
		}
		if q := queueIn(t, st); q.Entries[0].Node != "head" || q.Entries[0].Blocked != "" {
			t.Fatalf("head marked: %+v", q.Entries)
		}
	})

	t.Run("a stop longer than a turn: the node behind does not pass the front over at the resume", func(t *testing.T) {
		st := pipelinetest.NewStore("default", "n2")
		queued(st, "head", "n2")
		n2 := newSkewedNode(t, st, "n2", t0)
		release(t, st, "r", t0)
		if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
			t.Fatalf("n2 behind head, just freed: %v", err)
		}
		st.SetStop("an operator", true)
		n2.clock.Set(t0.Add(10 * time.Second))
		if _, err := n2.p.Run(ctx); !errors.Is(err, ending.ErrStopped) {
			t.Fatalf("n2 under the stop flag: %v", err)
		}
		// head could not keep its turn while stopped; the stop ends five minutes later.
		resumed := t0.Add(5 * time.Minute)
		n2.clock.Set(resumed)
		if _, err := n2.p.Run(ctx); !errors.Is(err, ending.ErrStopped) {
			t.Fatalf("n2 under the stop flag: %v", err)
		}
		st.SetStop("", false)
		n2.clock.Set(resumed.Add(time.Second))
		res, err := n2.p.Run(ctx)
		if !errors.Is(err, lock.ErrQueued) {
			t.Fatalf("n2 just after the resume took head's place: %v", err)
		}
		if q := queueIn(t, st); q.Entries[0].Node != "head" || q.Entries[0].Blocked != "" {
			t.Fatalf("head marked: %+v", q.Entries)
		}
		if want := resumed.Add(time.Second + lock.QueueGrace); res.Recheck.After(want) {
			t.Fatalf("n2 looks again at %v, after head's turn from the resume (%v)", res.Recheck, want)
		}
		n2.clock.Set(resumed.Add(time.Second + lock.QueueGrace))
		if res, err := n2.p.Run(ctx); err != nil || res.Outcome != pipeline.RebootStarted {
			t.Fatalf("n2 once head's turn from the resume passed: %v %v", res.Outcome, err)
		}
	})

	t.Run("a wall clock stepped back: the turns go on by the monotonic clock", func(t *testing.T) {
		st := pipelinetest.NewStore("default", "n2")
		queued(st, "dead", "n2")
		n2 := newSkewedNode(t, st, "n2", monotonic.Reading(t0, time.Hour))
		release(t, st, "r", t0)
		if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
			t.Fatalf("n2 behind dead, just freed: %v", err)
		}
		// dead's turn is over by the machine's monotonic clock, while its wall clock was stepped
		// ten minutes back: n2 passes dead over, rather than wait for a turn already over (a
		// look again due at once, run after run, until the wall clock caught up).
		past := lock.QueueGrace + time.Second
		n2.clock.Set(monotonic.Reading(t0.Add(past-10*time.Minute), time.Hour+past))
		if res, err := n2.p.Run(ctx); err != nil || res.Outcome != pipeline.RebootStarted {
			t.Fatalf("n2 once dead's turn passed by the monotonic clock: %v %v (look again at %v)", res.Outcome, err, res.Recheck)
		}
		if q := queueIn(t, st); len(q.Entries) != 1 || q.Entries[0].Node != "dead" || q.Entries[0].Blocked != lock.MissedTurn {
			t.Fatalf("dead not passed over: %+v", q.Entries)
		}
	})

	t.Run("a run held up after it read its clock: the times it reads are seen when read", func(t *testing.T) {
		// n2, behind head, begins a run at t0 and reads the records three minutes later (its
		// process paused). Meanwhile r's reboot finished and r gave its place back, and head,
		// waiting for the group's cooldown, kept its turn. Seen at the run's now, each of those
		// times looked three minutes old: at its next run n2 found the cooldown over and head's
		// turn passed, took the place beside it and marked head as having missed its turn.
		st := pipelinetest.NewStore("default", "n2")
		st.SetLimit(2)
		queued(st, "head", "n2")
		held := &heldUp{Store: st}
		n2 := newSkewedNode(t, st, "n2", t0)
		n2.p.Store, n2.p.Cooldown = held, 2*time.Minute
		held.hold = func() {
			if _, err := st.AppendHistory(ctx, history.Entry{Node: "r", Start: t0.Add(-time.Hour), End: t0.Add(2*time.Minute + 40*time.Second), Outcome: history.Finished}); err != nil {
				t.Fatal(err)
			}
			release(t, st, "r", t0.Add(2*time.Minute+40*time.Second))
			if err := place.ChangeQueue(ctx, st, slog.New(slog.DiscardHandler), func(q lock.Queue) lock.Queue { return q.Keep("head", t0.Add(2*time.Minute+50*time.Second)) }); err != nil {
				t.Fatal(err)
			}
			n2.clock.Set(t0.Add(3 * time.Minute))
		}
		if _, err := n2.p.Run(ctx); !pipeline.Working(err) {
			t.Fatalf("n2's held-up run, beside head in a lock of two: %v, want the cooldown", err)
		}
		n2.clock.Set(t0.Add(3*time.Minute + time.Second))
		if res, err := n2.p.Run(ctx); !pipeline.Working(err) {
			t.Fatalf("n2 a moment after its held-up run: %v %v, want the cooldown", res.Outcome, err)
		}
		if q := queueIn(t, st); q.Entries[0].Node != "head" || q.Entries[0].Blocked != "" {
			t.Fatalf("head marked: %+v", q.Entries)
		}
	})

	t.Run("a rebooting node forty minutes behind: the group is not stopped at its reboot", func(t *testing.T) {
		st := pipelinetest.NewStore("default", "n1")
		n1 := newSkewedNode(t, st, "n1", t0.Add(-40*time.Minute))
		if res, err := n1.p.Run(ctx); err != nil || res.Outcome != pipeline.RebootStarted {
			t.Fatalf("n1's reboot: %v %v", res.Outcome, err)
		}
		n2 := newSkewedNode(t, st, "n2", t0)
		if _, err := n2.p.Run(ctx); ending.Sentinel(err) == nil || errors.Is(err, ending.ErrStopped) {
			t.Fatalf("n2 while n1 reboots: %v", err)
		}
		if f, _ := st.Stop(ctx); f.Set {
			t.Fatalf("group stopped at n1's reboot: %s", f.Value)
		}
		// The deadline passes thirty minutes after n2 saw the reboot begin (a skew before, at
		// the earliest).
		n2.clock.Set(t0.Add(29*time.Minute - lock.Skew))
		if _, err := n2.p.Run(ctx); errors.Is(err, ending.ErrStopped) {
			t.Fatalf("n2 stopped the group before n1's deadline: %v", err)
		}
		if f, _ := st.Stop(ctx); f.Set {
			t.Fatalf("group stopped before n1's deadline: %s", f.Value)
		}
		n2.clock.Set(t0.Add(30*time.Minute + time.Second))
		if _, err := n2.p.Run(ctx); ending.Sentinel(err) == nil {
			t.Fatalf("n2 past n1's deadline: %v", err)
		}
		if f, _ := st.Stop(ctx); !f.Set || !strings.Contains(f.Value, "deadline") {
			t.Fatalf("group not stopped past n1's deadline: %+v", f)
		}
	})
}

// heldUp is a store whose next View is read only once hold ran: a run held up after it read its
// clock (its process paused, Consul slow).
type heldUp struct {
	*pipelinetest.Store
	hold func()
}

func (s *heldUp) View(ctx context.Context) (place.View, error) {
	if h := s.hold; h != nil {
		s.hold = nil
		h()
	}
	return s.Store.View(ctx)
}

func queueIn(t *testing.T, st *pipelinetest.Store) lock.Queue {
	t.Helper()
	v, err := st.View(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return v.Queue
}
