package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/watch"
)

// TestDeadlines: a holder's deadline that a run (or a look for health) found is a moment nothing
// announces: the daemon runs just after it, and a run that finds none calls the wait off.
func TestDeadlines(t *testing.T) {
	d, p, log := newDaemon(nil)
	clock := clockOf(d)
	start(t, d)
	queued := pipeline.Seen{Queued: true}
	p.next(t, outcome{err: held, res: pipeline.Result{Recheck: epoch.Add(5 * time.Minute), Seen: queued}})
	fleettest.WaitSeen(t, clock.Pending(1), "the wait for the holder's deadline")
	waits(t, clock, 5*time.Minute+deadlineSlack)
	clock.Advance(5 * time.Minute)
	waits(t, clock, 5*time.Minute+deadlineSlack) // not yet
	clock.Advance(deadlineSlack)
	unhealthy := fmt.Errorf("%w: a reboot in flight", ending.ErrUnhealthy)
	p.next(t, outcome{err: unhealthy, res: pipeline.Result{Seen: pipeline.Seen{InFlight: []string{"n7"}}}}) // the deadline's run

	// Waiting for health: the look at the locks that finds n7 still in flight sets the wait.
	d.Events.Send(watch.Event{Source: watch.SourceHolders})
	p.look(t, outcome{res: pipeline.Result{Recheck: epoch.Add(20 * time.Minute), Seen: pipeline.Seen{InFlight: []string{"n7"}}}})
	fleettest.WaitSeen(t, log.Seen("no reboot in flight ended"), "the look passing over the change")
	waits(t, clock, 20*time.Minute+deadlineSlack)

	// A run that finds no deadline calls the wait off.
	d.Events.Send(watch.Event{Source: watch.SourceTick})
	p.next(t, outcome{err: held, res: pipeline.Result{Seen: queued}})
	d.Events.Send(watch.Event{Source: watch.SourceTick})
	reply := <-p.runs
	waits(t, clock)
	reply <- outcome{err: held}
}

// recorder is a Presence that hands each status it is asked to publish to the test; the first
// fail of them fail.
type recorder struct {
	statuses chan string
	fail     atomic.Int32
}

func (r *recorder) Publish(ctx context.Context, _ bool, status string) error {
	select {
	case r.statuses <- status:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.fail.Add(-1) >= 0 {
		return errors.New("consul unreachable")
	}
	return nil
}

func (r *recorder) next(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-r.statuses:
		if got != want {
			t.Fatalf("published %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%q never published", want)
	}
}

// TestPresence: each new status is published, the same one only again at each Refresh, and a
// publication that fails is logged once and tried again at the next.
func TestPresence(t *testing.T) {
	d, p, log := newDaemon(nil)
	clock := clockOf(d)
	r := &recorder{statuses: make(chan string)}
	r.fail.Store(2)
	d.Presence, d.Refresh = r, time.Minute
	start(t, d)
	waiting := Status(pipeline.Result{}, held)
	p.next(t, outcome{err: held})
	r.next(t, waiting)
	d.Events.Send(watch.Event{Source: watch.SourceTick})
	p.next(t, outcome{err: held}) // the same status: not published again
	fleettest.WaitSeen(t, clock.Pending(1), "the refresh's wait")
	waits(t, clock, time.Minute)
	clock.Advance(time.Minute)
	r.next(t, waiting) // the refresh
	fleettest.WaitSeen(t, clock.Pending(1), "the next refresh's wait")
	waits(t, clock, 2*time.Minute)
	d.Events.Send(watch.Event{Source: watch.SourceTick})
	p.next(t, outcome{res: pipeline.Result{Outcome: pipeline.NothingToDo, Message: "no reboot required"}})
	r.next(t, "idle: no reboot required")
	fleettest.WaitSeen(t, log.Seen("publishing the daemon's status in Consul again"), "the recovery logged")
	if n := log.Count("could not publish the daemon's status"); n != 1 {
		t.Fatalf("two failures logged %d times:\n%s", n, log)
	}
}

// source is a source that is ready at once, then ends with err after it fed one event.
type source struct{ err error }

func (s source) Run(_ context.Context, events *watch.Events, ready func()) error {
	ready()
	events.Send(watch.Event{Source: watch.SourceTick})
	return s.err
}

// TestSources: a source that fails ends the daemon with its error; one that ends cleanly leaves
// the others be, and the daemon goes on.
func TestSources(t *testing.T) {
	boom := errors.New("watch failed for good")
	tests := []struct {
		name string
		src  Source
		want error
	}{
		{"a source fails", source{err: boom}, boom},
		{"a source ends cleanly", source{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, p, _ := newDaemon(nil)
			d.Sources = append(d.Sources, tt.src)
			cancel, done := start(t, d)
			if tt.want == nil {
				p.next(t, outcome{err: held})
				d.Events.Send(watch.Event{Source: watch.SourceTrigger})
				p.next(t, outcome{err: held})
				cancel()
			}
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
					t.Fatalf("Run = %v, want %v", err, tt.want)
				}
				done <- err
			case <-time.After(10 * time.Second):
				t.Fatal("the daemon did not stop")
			}
		})
	}
}

// TestOperationalErrorsAreRetried: Consul trouble is tried again after a backoff without any
// event; a gate is not, and a gate resets the backoff.
func TestOperationalErrorsAreRetried(t *testing.T) {
	d, p, _ := newDaemon(func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.Multiplier, b.RandomizationFactor = time.Second, 2, 0
		b.Reset()
		return b
	})
	clock := clockOf(d)
	start(t, d)
	trouble := outcome{err: errors.New("consul unreachable")}
	p.next(t, trouble)
	fleettest.WaitSeen(t, clock.Pending(1), "the wait before the first retry")
	waits(t, clock, time.Second)
	clock.Advance(time.Second)
	p.next(t, trouble)
	fleettest.WaitSeen(t, clock.Pending(1), "the wait before the second retry")
	waits(t, clock, 3*time.Second) // twice as long, from the first retry
	clock.Advance(time.Second)
	waits(t, clock, 3*time.Second) // not yet
	clock.Advance(time.Second)
	p.next(t, outcome{err: held})
	// A gate: no retry. The next run, asked by an event, sees the daemon wait for nothing.
	d.Events.Send(watch.Event{Source: watch.SourceHealth})
	reply := <-p.runs
	waits(t, clock)
	reply <- trouble
	fleettest.WaitSeen(t, clock.Pending(1), "the wait before the retry")
	waits(t, clock, 4*time.Second) // the backoff starts over
}

// TestRebootTimeout: a machine still up RebootTimeout after the reboot started ends the daemon
// with ErrStillRunning; nothing is evaluated meanwhile.
func TestRebootTimeout(t *testing.T) {
	d, p, _ := newDaemon(nil)
	clock := clockOf(d)
	_, done := start(t, d)
	p.next(t, outcome{res: pipeline.Result{Outcome: pipeline.RebootStarted}})
	d.Events.Send(watch.Event{Source: watch.SourceLock})
	fleettest.WaitSeen(t, clock.Pending(1), "the wait for the machine to go down")
	waits(t, clock, d.RebootTimeout)
	clock.Advance(d.RebootTimeout - time.Second)
	waits(t, clock, d.RebootTimeout)
	clock.Advance(time.Second)
	select {
	case err := <-done:
		if !errors.Is(err, ErrStillRunning) {
			t.Fatalf("err = %v", err)
		}
		done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not give up")
	}
	p.none(t)
}

// TestPassesOverSilentNodes: nodes a run woke for a place are followed: once they had their time
// to answer, the daemon passes over those that did not, then follows whom that woke, reaching
// further each time, until a pass wakes nobody.
func TestPassesOverSilentNodes(t *testing.T) {
	d, p, log := newDaemon(nil)
	p.passed = make(chan passCall)
	d.AnswerWithin = 10 * time.Second
	clock := clockOf(d)
	start(t, d)
	woke := []lock.QueueEntry{{Node: "a"}, {Node: "b"}}
	p.next(t, outcome{res: pipeline.Result{Outcome: pipeline.Finished, Seen: pipeline.Seen{Woke: woke}}})
	for i, next := range [][]lock.QueueEntry{{{Node: "c"}, {Node: "d"}}, {{Node: "e"}}, nil} {
		fleettest.WaitSeen(t, clock.Pending(1), fmt.Sprintf("the wait before pass %d", i))
		waits(t, clock, time.Duration(i+1)*d.AnswerWithin)
		clock.Advance(d.AnswerWithin)
		select {
		case c := <-p.passed:
			if c.woke[0].Node != woke[0].Node || c.more != place.PassReach(i) {
				t.Fatalf("pass %d: %+v, more %d", i, c.woke, c.more)
			}
			c.reply <- next
			woke = next
		case <-time.After(10 * time.Second):
			t.Fatalf("pass %d never came", i)
		}
	}
	fleettest.WaitSeen(t, log.Seen("every node told of a place answered"), "the last pass")
	waits(t, clock) // a pass that woke nobody: no pass after it
}
