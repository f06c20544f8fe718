package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// report is what a daemon's watches report at a moment of the stay-green period (at, since the
// run started), with what changed in the world then (do).
type report struct {
	at     time.Duration
	change pipeline.Change
	do     func(w *watched)
}

// watched is a run's clock and its daemon's watches in one: a wait ends at the moment of the
// next report, if it comes first, and the run hears the report (its wait never fires); else the
// clock moves on by the wait. It counts what the run reads and writes while it stays green.
type watched struct {
	mu       sync.Mutex
	now, t0  time.Time
	reports  []report
	watching bool
	wake     chan struct{}
	changed  pipeline.Change
	opened   int
	closed   int
	// failing says when the node's check fails (nil: never).
	failing func(elapsed time.Duration) bool
	store   *pipelinetest.Store
	*pipelinetest.Health
	// looks are the health reads, writes the writes, stops the reads of the stop flags alone,
	// each at the time elapsed since t0.
	looks, writes, stops []time.Duration
}

func (w *watched) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *watched) elapsed() time.Duration { return w.Now().Sub(w.t0) }

func (w *watched) After(d time.Duration) <-chan time.Time {
	w.mu.Lock()
	if len(w.reports) > 0 && !w.t0.Add(w.reports[0].at).After(w.now.Add(d)) {
		r := w.reports[0]
		w.reports = w.reports[1:]
		w.now = w.t0.Add(r.at)
		w.changed |= r.change
		w.mu.Unlock()
		if r.do != nil {
			r.do(w)
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return nil
	}
	w.now = w.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- w.now
	w.mu.Unlock()
	return ch
}

// listen opens the watched as a run's Listener.
func (w *watched) listen() pipeline.Listener {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opened++
	return listener{w}
}

type listener struct{ w *watched }

func (l listener) Wake() <-chan struct{} { return l.w.wake }

func (l listener) Take() (pipeline.Change, bool) {
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.changed
	w.changed = 0
	return c, w.watching
}

func (l listener) Close() {
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	l.w.closed++
}

// Check is the node's health, failing when failing says so; a read is a look.
func (w *watched) Check(ctx context.Context, node string, down map[string]string) (health.Report, error) {
	e := w.elapsed()
	w.mu.Lock()
	w.looks = append(w.looks, e)
	w.mu.Unlock()
	if w.failing != nil && w.failing(e) {
		return health.Evaluate(node, []health.Service{{Name: "galera", Tags: []string{health.Tag}, Instances: []health.Instance{
			{Node: node, ServiceID: "galera", Checks: []health.Check{{Node: node, CheckID: "service:galera", Status: "critical"}}},
		}}}, down), nil
	}
	return w.Health.Check(ctx, node, down)
}

// counted is the store, counting the reads of the stop flags alone.
type counted struct {
	*pipelinetest.Store
	w *watched
}

func (c counted) Stop(ctx context.Context) (place.Flag, error) {
	e := c.w.elapsed()
	c.w.mu.Lock()
	c.w.stops = append(c.w.stops, e)
	c.w.mu.Unlock()
	return c.Store.Stop(ctx)
}

// within are the moments of ds strictly inside the stay-green period (0, green).
func within(ds []time.Duration, green time.Duration) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		if d > 0 && d < green {
			out = append(out, d)
		}
	}
	return out
}

// openPlace gives a place back in the group's queue: the node at its front is woken.
func openPlace(w *watched) {
	if err := place.ChangeQueue(context.Background(), w.store, slog.New(slog.DiscardHandler), func(q lock.Queue) lock.Queue {
		q.Freed = w.Now()
		return q
	}); err != nil {
		panic(err)
	}
}

// TestStayGreenHearsTheWatches: a run that hears its daemon's watches looks at each change they
// report and, with nothing reported, only every GreenFallback: a check that fails between two
// looks a poll of every second would make, reported, stops the run; a stop flag ends it at the
// report; a wake is answered at once. While the watches cannot be relied on, and without them,
// it polls every second.
func TestStayGreenHearsTheWatches(t *testing.T) {
	const green = time.Minute
	ms := func(d ...time.Duration) []time.Duration { return d }
	s := time.Second
	for _, tt := range []struct {
		name     string
		listens  bool
		watching bool
		reports  []report
		failing  func(time.Duration) bool
		// says is what the run's error says ("": the reboot starts); endsAt, when it ends.
		says   string
		endsAt time.Duration
		// looks, writes and stops inside the stay-green period (-1: not counted).
		looks, writes, stops []time.Duration
		count                bool
	}{
		{name: "nothing reported: the fallback looks alone", listens: true, watching: true, endsAt: green,
			looks: ms(30 * s), writes: ms(30 * s), count: true},
		{name: "without watches: a poll every second", endsAt: green, looks: polls(green), writes: ms(5*s, 10*s, 15*s, 20*s, 25*s, 30*s, 35*s, 40*s, 45*s, 50*s, 55*s), count: true},
		{name: "watches that cannot be relied on: a poll every second", listens: true, endsAt: green, looks: polls(green), writes: ms(5*s, 10*s, 15*s, 20*s, 25*s, 30*s, 35*s, 40*s, 45*s, 50*s, 55*s), count: true},
		{name: "a check that flaps between two polls, reported", listens: true, watching: true,
			reports: []report{{at: 20300 * time.Millisecond, change: pipeline.ChangedHealth}},
			failing: between(20300*time.Millisecond, 20600*time.Millisecond), says: "health while staying green", endsAt: 20300 * time.Millisecond},
		{name: "the same flap, polled: unseen", failing: between(20300*time.Millisecond, 20600*time.Millisecond), endsAt: green},
		{name: "a check that fails at the end", listens: true, watching: true,
			failing: between(green, green+s), says: "green for " + green.String(), endsAt: green},
		{name: "a stop flag, reported", listens: true, watching: true,
			reports: []report{{at: 10500 * time.Millisecond, change: pipeline.ChangedStop, do: func(w *watched) { w.store.SetStop("an operator", true) }}},
			says:    "stop flag is set", endsAt: 10500 * time.Millisecond, looks: nil, stops: ms(10500 * time.Millisecond), count: true},
		{name: "a wake, answered at once", listens: true, watching: true,
			reports: []report{{at: 12500 * time.Millisecond, change: pipeline.ChangedTurn, do: openPlace}},
			endsAt:  green, looks: ms(30 * s), writes: ms(12500*time.Millisecond, 12500*time.Millisecond, 42500*time.Millisecond), count: true},
		{name: "a change the run does not wait on: nothing read", listens: true, watching: true,
			reports: []report{{at: 15 * s}}, endsAt: green, looks: ms(30 * s), writes: ms(30 * s), count: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.config.StayGreen = green
			m.store.SetTrigger("n1", "", true)
			start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			w := &watched{now: start, t0: start, reports: tt.reports, watching: tt.watching, wake: make(chan struct{}, 1),
				failing: tt.failing, store: m.store, Health: m.health}
			m.store.AfterWrite = func(int) { w.writes = append(w.writes, w.elapsed()) }
			p := m.pipeline()
			p.Clock, p.Health, p.Store = w, w, counted{m.store, w}
			ctx := t.Context()
			if tt.listens {
				ctx = pipeline.Listening(ctx, w.listen)
			}
			res, err := p.Run(ctx)
			switch {
			case tt.says == "" && (err != nil || res.Outcome != pipeline.RebootStarted):
				t.Fatalf("%v %v, want the reboot started", res.Outcome, err)
			case tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)):
				t.Fatalf("%v, want %q", err, tt.says)
			case tt.says != "" && (m.reboot.Count() != 0 || len(m.lock().Holders) != 0):
				t.Fatalf("rebooted (%d) or took a place (%+v)", m.reboot.Count(), m.lock())
			case tt.says == "stop flag is set" && !errors.Is(err, ending.ErrStopped):
				t.Fatalf("%v, want the stop gate", err)
			}
			if e := w.elapsed(); e != tt.endsAt {
				t.Errorf("the run ended %s into the stay-green period, want %s", e, tt.endsAt)
			}
			if tt.listens && (w.opened != 1 || w.closed != 1) {
				t.Errorf("listener opened %d times, closed %d, want once each", w.opened, w.closed)
			}
			if !tt.count {
				return
			}
			for _, c := range []struct {
				what      string
				got, want []time.Duration
			}{{"looks", within(w.looks, green), tt.looks}, {"writes", within(w.writes, green), tt.writes}, {"reads of the stop flags", within(w.stops, green), tt.stops}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s at %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

// polls are the moments a run polling every second looks during a stay-green period of green.
func polls(green time.Duration) []time.Duration {
	var out []time.Duration
	for d := time.Second; d < green; d += time.Second {
		out = append(out, d)
	}
	return out
}

func between(from, to time.Duration) func(time.Duration) bool {
	return func(e time.Duration) bool { return e >= from && e < to }
}
