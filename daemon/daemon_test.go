package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/watch"
)

// scripted is a pipeline whose runs (and lock checks) the test hands out one by one.
type scripted struct {
	runs   chan chan outcome
	checks chan chan outcome
	// passed, when set, hears every PassTurns and answers it with the next nodes woken.
	passed chan passCall
}

type passCall struct {
	woke  []lock.QueueEntry
	more  int
	reply chan []lock.QueueEntry
}

func (s *scripted) PassTurns(ctx context.Context, woke []lock.QueueEntry, more int) ([]lock.QueueEntry, error) {
	if s.passed == nil {
		return nil, nil
	}
	c := passCall{woke: woke, more: more, reply: make(chan []lock.QueueEntry, 1)}
	select {
	case s.passed <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case next := <-c.reply:
		return next, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type outcome struct {
	res pipeline.Result
	err error
}

func (s *scripted) Run(ctx context.Context) (pipeline.Result, error) {
	o, err := ask(ctx, s.runs)
	if err != nil {
		return pipeline.Result{}, err
	}
	return o.res, o.err
}

// ask hands the test a reply channel over ch and waits for its answer (or ctx).
func ask[T any](ctx context.Context, ch chan chan T) (T, error) {
	var zero T
	reply := make(chan T)
	select {
	case ch <- reply:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case v := <-reply:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (s *scripted) LookAtLock(ctx context.Context) (pipeline.Result, error) {
	o, err := ask(ctx, s.checks)
	if err != nil {
		return pipeline.Result{}, err
	}
	return o.res, o.err
}

// LookAtQueue is answered as a look at the lock: the script says what the front shows.
func (s *scripted) LookAtQueue(ctx context.Context) (pipeline.Result, error) {
	return s.LookAtLock(ctx)
}

// check waits for the daemon's next lock check and answers it with err, the node still in the
// queue.
func (s *scripted) check(t *testing.T, err error) {
	t.Helper()
	s.look(t, outcome{err: err, res: pipeline.Result{Seen: pipeline.Seen{Queued: true}}})
}

// look waits for the daemon's next lock check and answers it.
func (s *scripted) look(t *testing.T, o outcome) {
	t.Helper()
	select {
	case reply := <-s.checks:
		reply <- o
	case reply := <-s.runs:
		reply <- outcome{}
		t.Fatal("a whole run where a lock check was due")
	case <-time.After(10 * time.Second):
		t.Fatal("no lock check")
	}
}

// next waits for the daemon's next run and answers it.
func (s *scripted) next(t *testing.T, o outcome) {
	t.Helper()
	select {
	case reply := <-s.runs:
		reply <- o
	case <-time.After(10 * time.Second):
		t.Fatal("no evaluation")
	}
}

// none checks that no evaluation is waiting.
func (s *scripted) none(t *testing.T) {
	t.Helper()
	select {
	case <-s.runs:
		t.Fatal("an evaluation nobody asked for")
	default:
	}
}

type nopNotifier struct{}

func (nopNotifier) Ready(string) error  { return nil }
func (nopNotifier) Status(string) error { return nil }

// gate is a source that is ready at once and sends nothing by itself.
type gate struct{}

func (gate) Run(ctx context.Context, _ *watch.Events, ready func()) error {
	ready()
	<-ctx.Done()
	return nil
}

func newDaemon(retry func() backoff.BackOff) (*Daemon, *scripted, *fleettest.Log) {
	p := &scripted{runs: make(chan chan outcome), checks: make(chan chan outcome)}
	buf := &fleettest.Log{}
	return &Daemon{
		Pipeline:      p,
		Sources:       []Source{gate{}},
		Events:        watch.NewEvents(),
		RebootTimeout: 10 * time.Minute,
		Notifier:      nopNotifier{},
		Logger:        slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry:         retry,
		Clock:         pipelinetest.NewManualClock(epoch),
	}, p, buf
}

// epoch is when the daemons of these tests start.
var epoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// clockOf is the daemon's clock, which the test moves.
func clockOf(d *Daemon) *pipelinetest.ManualClock { return d.Clock.(*pipelinetest.ManualClock) }

// waits checks the moments the daemon waits for, from the start, in the order set.
func waits(t *testing.T, c *pipelinetest.ManualClock, want ...time.Duration) {
	t.Helper()
	got := c.Waits()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Equal(epoch.Add(want[i]))
	}
	if !ok {
		t.Fatalf("the daemon waits for %v, want %v after %v", got, want, epoch)
	}
}

func start(t *testing.T, d *Daemon) (context.CancelFunc, chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel, done
}

var held = fmt.Errorf("%w: n7", ending.ErrLockHeld)

// queuedBehind is a run that waits for the lock in the group's queue.
var queuedBehind = outcome{err: held, res: pipeline.Result{Seen: pipeline.Seen{Queued: true}}}

func TestBurstsCoalesce(t *testing.T) {
	d, p, _ := newDaemon(nil)
	start(t, d)
	// The first evaluation is running; a burst arrives meanwhile.
	reply := <-p.runs
	for range 100 {
		d.Events.Send(watch.Event{Source: watch.SourceHealth})
	}
	reply <- outcome{err: held}
	p.next(t, outcome{err: held})
	p.none(t)
}

func TestOneLinePerStatusChange(t *testing.T) {
	d, p, log := newDaemon(nil)
	start(t, d)
	idle := outcome{res: pipeline.Result{Outcome: pipeline.NothingToDo, Message: "no reboot required"}}
	answers := []outcome{{err: held}, {err: held}, {err: held}, idle, idle, idle}
	for i, o := range answers {
		if i > 0 {
			d.Events.Send(watch.Event{Source: watch.SourceTick})
		}
		p.next(t, o)
	}
	// The daemon logs a run's status before it asks for the next evaluation.
	d.Events.Send(watch.Event{Source: watch.SourceTick})
	p.next(t, idle)
	if n := strings.Count(log.String(), "waiting:"); n != 1 {
		t.Fatalf("one status logged %d times:\n%s", n, log)
	}
	if n := strings.Count(log.String(), "idle: no reboot required"); n != 1 {
		t.Fatalf("one status logged %d times:\n%s", n, log)
	}
}

// TestWaitingForTheLockLooksAtTheLockOnly: a node waiting for the lock answers a change of the
// lock with a look at the lock alone, and runs the whole pipeline once there is a place, or
// when anything else changes; a node with nothing to do does not answer it at all.
func TestWaitingForTheLockLooksAtTheLockOnly(t *testing.T) {
	d, p, log := newDaemon(nil)
	start(t, d)
	p.next(t, queuedBehind)
	lock := watch.Event{Source: watch.SourceLock}

	d.Events.Send(lock)
	p.check(t, fmt.Errorf("%w: n8", ending.ErrLockHeld)) // another holder: the status follows
	d.Events.Send(lock)
	p.check(t, nil) // a place: the whole run
	p.next(t, queuedBehind)

	d.Events.Send(watch.Event{Source: watch.SourceHealth})
	p.next(t, queuedBehind)
	d.Events.Send(lock)
	p.check(t, errors.New("consul unreachable")) // trouble: a whole run after the backoff
	fleettest.WaitSeen(t, clockOf(d).Pending(1), "the wait before the retry")
	p.none(t)
	clockOf(d).Advance(time.Minute)
	p.next(t, outcome{res: pipeline.Result{Outcome: pipeline.NothingToDo, Message: "no reboot required"}})

	d.Events.Send(lock)
	p.none(t) // nothing to do, and only the lock changed: no evaluation at all
	d.Events.Send(watch.Event{Source: watch.SourceTrigger})
	p.next(t, outcome{err: held}) // asked: a whole run, and its entry in the queue not written
	d.Events.Send(lock)
	p.next(t, queuedBehind) // not in the queue: a whole run again, which joins it
	d.Events.Send(lock)
	p.check(t, held) // in it: a look
	for _, holder := range []string{"n7", "n8"} {
		if !strings.Contains(log.String(), "held by another node: "+holder) {
			t.Errorf("the status never named %s:\n%s", holder, log)
		}
	}
}

// TestTickOfANodeWaitingForItsTurn: at its tick, a node waiting for its turn looks at the
// queue's front; it waits on where the front says no place is its, reads the whole queue where
// the front cannot say, and runs only where that says it may.
func TestTickOfANodeWaitingForItsTurn(t *testing.T) {
	d, p, _ := newDaemon(nil)
	start(t, d)
	queued := fmt.Errorf("%w: %w", ending.ErrLockHeld, lock.ErrQueued)
	waiting := outcome{err: queued, res: pipeline.Result{Seen: pipeline.Seen{Queued: true}}}
	looked := func(partial, front bool) outcome {
		return outcome{err: queued, res: pipeline.Result{Seen: pipeline.Seen{Queued: true, Standing: pipeline.QueuedReady, Partial: partial, Front: front}}}
	}
	tick := watch.Event{Source: watch.SourceTick}
	p.next(t, waiting)

	d.Events.Send(tick)
	p.look(t, looked(true, false)) // far back, as the front says: it waits on
	d.Events.Send(tick)
	p.look(t, looked(true, true))   // the front cannot say: the whole queue
	p.look(t, looked(false, false)) // behind the front of the whole queue: it waits on
	d.Events.Send(tick)
	p.look(t, looked(true, true))
	p.look(t, looked(false, true)) // at the front of the whole queue: a run
	p.next(t, waiting)
	d.Events.Send(watch.Event{Source: watch.SourceLock})
	p.none(t) // its held watches: nothing
}

// TestMalformedTagIsAConfigurationError: a health gate that failed because a rule tag cannot
// be read is logged at ERROR as a configuration error, not at INFO as waiting for health; both
// wait for events (the fixed tag is one), neither is retried as trouble with Consul.
func TestMalformedTagIsAConfigurationError(t *testing.T) {
	malformed := fmt.Errorf(`%w: health: service web: %w`, ending.ErrUnhealthy,
		fmt.Errorf(`service web: %w "min_passing=abc": want min_passing=N`, health.ErrMalformedTag))
	unhealthy := fmt.Errorf("%w: health: web on this node: check critical", ending.ErrUnhealthy)
	tests := []struct {
		name   string
		err    error
		level  string
		status string
	}{
		{"malformed tag", malformed, "level=ERROR", "configuration error, waiting for the tags to be fixed: "},
		{"failing check", unhealthy, "level=INFO", "waiting for health: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(pipeline.Result{}, tt.err); !strings.HasPrefix(got, tt.status) {
				t.Fatalf("status %q, want it to start with %q", got, tt.status)
			}
			d, p, log := newDaemon(func() backoff.BackOff { return &backoff.ZeroBackOff{} })
			start(t, d)
			p.next(t, outcome{err: tt.err})
			// The status is logged before the next evaluation is asked for; only an event
			// brings one (a retry would come without).
			d.Events.Send(watch.Event{Source: watch.SourceHealth})
			p.next(t, outcome{err: tt.err})
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			var logged []string
			for _, l := range lines {
				if strings.Contains(l, tt.status) {
					logged = append(logged, l)
				}
			}
			if len(logged) != 1 || !strings.Contains(logged[0], tt.level) || !strings.Contains(logged[0], "gate=") {
				t.Fatalf("want one line at %s saying %q, got:\n%s", tt.level, tt.status, log)
			}
		})
	}
}

// TestPythonLockEvents: a change of the Python rebootmgr's lock (its session locks flap on every
// run of a Python node) is, like the fleet's holders, only for a node waiting for the lock (a
// look at the lock alone) or for health (a look at the locks, and a whole run only when a reboot
// it counted in flight has ended): a node with nothing to do does not evaluate.
func TestPythonLockEvents(t *testing.T) {
	d, p, log := newDaemon(nil)
	d.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	start(t, d)
	python := watch.Event{Source: watch.SourcePython}
	idle := outcome{res: pipeline.Result{Outcome: pipeline.NothingToDo, Message: "no reboot required"}}
	p.next(t, idle)
	for i := 1; i <= 2; i++ {
		d.Events.Send(python)
		fleettest.WaitSeen(t, log.SeenN("not evaluating", i), "the event passed over")
	}
	d.Events.Send(watch.Event{Source: watch.SourceTrigger})
	p.next(t, queuedBehind) // the trigger: a whole run, which waits for the lock
	d.Events.Send(python)
	p.check(t, held)
	d.Events.Send(python)
	p.check(t, nil) // the Python node is done: the whole run
	unhealthy := outcome{err: fmt.Errorf("%w: a reboot in flight", ending.ErrUnhealthy), res: pipeline.Result{Seen: pipeline.Seen{InFlight: []string{"n7"}}}}
	p.next(t, unhealthy)
	d.Events.Send(python)
	p.look(t, outcome{res: pipeline.Result{Seen: pipeline.Seen{InFlight: []string{"n7", "n9"}}}})
	fleettest.WaitSeen(t, log.Seen("no reboot in flight ended: not evaluating"), "a reboot more in flight passed over")
	p.none(t)
	d.Events.Send(python)
	p.look(t, outcome{res: pipeline.Result{Seen: pipeline.Seen{InFlight: []string{"n9"}}}})
	p.next(t, idle) // waiting for health, and n7 landed: a whole run
	p.none(t)
}

// TestYieldingWatchesTheClaims: a node that leaves a place to a node with less room hears of
// the claims (it runs again once that node has looked); any other node holds that watch, and an
// idle node answers no change of the claims.
func TestYieldingWatchesTheClaims(t *testing.T) {
	d, p, log := newDaemon(nil)
	d.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d.Claims = watch.NewPause(true)
	start(t, d)
	claims := watch.Event{Source: watch.SourceClaims}
	idle := outcome{res: pipeline.Result{Outcome: pipeline.NothingToDo, Message: "no reboot required"}}
	p.next(t, idle)
	fleettest.WaitSeen(t, log.Seen("idle: no reboot required"), "the idle status")
	if !d.Claims.Held() {
		t.Fatal("an idle node watches the claims")
	}
	d.Events.Send(claims)
	fleettest.WaitSeen(t, log.Seen("not evaluating"), "a change of the claims passed over")
	p.none(t)

	d.Events.Send(watch.Event{Source: watch.SourceTrigger})
	yields := outcome{err: fmt.Errorf("%w: %w", ending.ErrLockHeld, &lock.YieldError{Claim: lock.Claim{Node: "ctl2"}})}
	p.next(t, yields)
	fleettest.WaitSeen(t, log.Seen("waiting: "), "the yielding status")
	if d.Claims.Held() {
		t.Fatal("a yielding node holds its watch of the claims")
	}
	d.Events.Send(claims)
	p.next(t, outcome{err: fmt.Errorf("%w: quobyte full", ending.ErrUnhealthy)}) // ctl2 looked: a whole run
	fleettest.WaitSeen(t, log.Seen("waiting for health"), "the status waiting for health")
	if !d.Claims.Held() {
		t.Fatal("a node waiting for health watches the claims")
	}
}
