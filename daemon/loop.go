package daemon

import (
	"context"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/watch"
)

// runLoop waits for the next thing to do and does it (see loop.handle), until ctx ends or a
// reboot started.
func (d *Daemon) runLoop(ctx context.Context, watching <-chan struct{}, statuses chan presence) error {
	select {
	case <-ctx.Done():
		return nil
	case <-watching:
	}
	l := d.start(statuses)
	defer l.stop()
	for {
		var w wake
		select {
		case <-ctx.Done():
			return nil
		case <-d.Events.Wake():
			w = wakeEvents
		case <-l.again.C():
			w = wakeAgain
		case <-l.deadline.C():
			w = wakeDeadline
		case <-l.passes.due.C():
			w = wakePasses
		}
		switch l.handle(ctx, w) {
		case stepRebooting:
			return d.waitForShutdown(ctx)
		case stepShutdown:
			return nil
		}
	}
}

// start is the loop at its start: its first evaluation is due, and it hears every change.
func (d *Daemon) start(statuses chan presence) *loop {
	l := d.newLoop(statuses)
	d.Events.Send(watch.Event{Source: watch.SourceStart})
	d.hold(watches(l.s, false))
	return l
}

// wake is what woke the loop: events, or one of its waits that is over.
type wake int

const (
	wakeEvents wake = iota
	wakeAgain
	wakeDeadline
	wakePasses
)

// step is what handling a wake left: the loop goes on, a reboot started, or ctx ended.
type step int

const (
	stepOn step = iota
	stepRebooting
	stepShutdown
)

// handle does what w calls for: a wait that is over becomes an event (a retry, a deadline) or
// the passes it was set for; events are taken as a batch, and decide says what they call for.
func (l *loop) handle(ctx context.Context, w wake) step {
	d := l.d
	switch w {
	case wakeAgain:
		l.again.stop()
		d.Events.Send(watch.Event{Source: watch.SourceRetry})
		return stepOn
	case wakeDeadline:
		l.deadline.stop()
		d.Events.Send(watch.Event{Source: watch.SourceDeadline})
		return stepOn
	case wakePasses:
		l.passes.pass(ctx, d)
		return stepOn
	}
	evs := d.Events.Take()
	act, why := decide(l.s, evs)
	if act == skip {
		if why != "" {
			d.Logger.Debug(why)
		}
		return stepOn
	}
	d.logEvaluation(evs, why)
	var res pipeline.Result
	var err error
	if act == look || act == turnLook {
		act, res, err = l.look(ctx, act)
	}
	switch act {
	case skip:
		return stepOn
	case run:
		d.hold(watches(l.s, true))
		rctx := pipeline.Listening(ctx, l.listen)
		if toldOfPlace(evs) {
			rctx = pipeline.Told(rctx)
		}
		res, err = d.Pipeline.Run(rctx)
	}
	if ctx.Err() != nil {
		d.Logger.Info("shutting down: the reboot lock stays as it is")
		return stepShutdown
	}
	if l.settle(ctx, res, err) {
		return stepRebooting
	}
	return stepOn
}

// toldOfPlace says whether evs hold a wake for a place (the node's turn key said so).
func toldOfPlace(evs []watch.Event) bool {
	return slices.ContainsFunc(evs, func(ev watch.Event) bool { return ev.Source == watch.SourceTurn })
}

// loop is what the daemon's loop keeps between two evaluations.
type loop struct {
	d     *Daemon
	clock pipeline.Clock
	s     state
	retry backoff.BackOff
	// again: the next evaluation after operational trouble; deadline: just after a holder's
	// deadline, a moment nothing else announces.
	again, deadline timer
	passes          passer
	// status is the last status reported; ready, that the service manager heard the first.
	status string
	ready  bool
	// statuses hands the publisher the status to publish (nil: none is published).
	statuses chan presence
}

func (d *Daemon) newLoop(statuses chan presence) *loop {
	retry := d.Retry
	if retry == nil {
		retry = watch.DefaultRetry
	}
	within := d.AnswerWithin
	if within <= 0 {
		within = lock.AnswerWithin
	}
	clock := d.clock()
	return &loop{
		d: d, clock: clock, retry: retry(), statuses: statuses,
		again: timer{clock: clock}, deadline: timer{clock: clock},
		passes: passer{within: within, due: timer{clock: clock}},
	}
}

// stop calls off the loop's waits.
func (l *loop) stop() {
	l.again.stop()
	l.deadline.stop()
	l.passes.due.stop()
}

// settle takes in what a run (or a look at the lock standing for one) found: the state it
// leaves and what the watches hold, the waits it sets, and the status. It says whether the run
// started the reboot.
func (l *loop) settle(ctx context.Context, res pipeline.Result, err error) (rebooting bool) {
	d := l.d
	l.passes.woke(res.Seen.Woke)
	turn := pipeline.WaitsForTurn(res, err) && d.allWake(ctx)
	if turn && !l.s.waitingTurn {
		d.Logger.Debug("waiting for its turn in the group's queue: holding its watches of the lock, the holders and health until a place opens for it")
	}
	l.s = stateAfter(res, err, turn)
	d.hold(watches(l.s, false))
	if d.Observe != nil {
		d.Observe(res, err)
	}
	l.deadline.stop()
	l.recheck(res.Recheck)
	l.report(res, err)
	switch {
	case err == nil && res.Outcome == pipeline.RebootStarted:
		return true
	case err != nil && ending.Sentinel(err) == nil:
		// Operational trouble: try again after a backoff, events or not.
		l.again.set(l.retry.NextBackOff())
	default:
		l.retry.Reset()
		l.again.stop()
	}
	return false
}

// look looks at the lock alone, and says what that leaves to do (see afterLook).
func (l *loop) look(ctx context.Context, kind action) (action, pipeline.Result, error) {
	var res pipeline.Result
	var err error
	var act action
	var why string
	if kind == turnLook {
		// The queue's front first: what makes a node far back wait on holds of the whole queue
		// too; the whole of it is read only where the front says the node might run.
		res, err = l.d.Pipeline.LookAtQueue(ctx)
		if act, why = afterTurnLook(l.s, res, err); act == run && res.Seen.Partial {
			res, err = l.d.Pipeline.LookAtLock(ctx)
			act, why = afterTurnLook(l.s, res, err)
		}
	} else {
		res, err = l.d.Pipeline.LookAtLock(ctx)
		act, why = afterLook(l.s, res, err)
	}
	if act == skip {
		l.recheck(res.Recheck)
	}
	l.d.Logger.Debug(why)
	return act, res, err
}

// recheck looks again just after at (a holder's deadline); nothing when at is zero.
func (l *loop) recheck(at time.Time) {
	if !at.IsZero() {
		l.deadline.set(at.Sub(l.clock.Now()) + deadlineSlack)
	}
}

// report logs the node's status when it changed, and tells the service manager and the
// publisher of its presence.
func (l *loop) report(res pipeline.Result, err error) {
	d := l.d
	status := ending.Resolution(Status(res, err), err, d.Node, d.Group)
	if status != l.status {
		d.log(res, err, status)
		l.status = status
		if l.statuses != nil {
			select {
			case <-l.statuses: // a status not published yet is replaced by the newer one
			default:
			}
			l.statuses <- presence{ending.WaitsForOperator(err), status}
		}
	}
	if !l.ready {
		_ = d.Notifier.Ready(status)
		l.ready = true
		return
	}
	_ = d.Notifier.Status(status)
}

// hold sets what the watches hold.
func (d *Daemon) hold(h holds) {
	d.Quiet.Set(h.quiet)
	d.Health.Set(h.health, d.clock().Now())
	d.Turn.Set(h.turn)
	d.Claims.Set(h.claims)
}

func (d *Daemon) clock() pipeline.Clock {
	if d.Clock == nil {
		return pipeline.SystemClock{}
	}
	return d.Clock
}

// timer is one of the loop's waits: none, or one set on the clock.
type timer struct {
	clock pipeline.Clock
	t     pipeline.Timer
}

// C fires when the wait set is over (never when none is).
func (w *timer) C() <-chan time.Time {
	if w.t == nil {
		return nil
	}
	return w.t.C()
}

// set waits for d, in place of the wait set before.
func (w *timer) set(d time.Duration) {
	w.stop()
	w.t = pipeline.NewTimer(w.clock, d)
}

// stop calls the wait off.
func (w *timer) stop() {
	if w.t != nil {
		w.t.Stop()
		w.t = nil
	}
}

// passer follows the nodes a daemon woke for a place until they answered (see
// pipeline.PassTurns): one pass when they had their time, and another for those each pass woke,
// reaching further into the queue each time.
type passer struct {
	within  time.Duration
	due     timer
	pending []lock.QueueEntry
	round   int
}

// woke notes the nodes a run woke (none: nothing to follow, or the last are followed still).
func (p *passer) woke(entries []lock.QueueEntry) {
	if len(entries) == 0 {
		return
	}
	p.pending, p.round = entries, 0
	p.due.set(p.within)
}

// pass passes over those of the nodes woken that did not answer, and follows whom that woke.
func (p *passer) pass(ctx context.Context, d *Daemon) {
	p.due.stop()
	woke, err := d.Pipeline.PassTurns(ctx, p.pending, place.PassReach(p.round))
	if err != nil {
		d.Logger.Warn("could not pass over the nodes woken for a place that did not answer: they keep it until their turn passes", logkey.Err, err)
		return
	}
	if len(woke) == 0 {
		d.Logger.Debug("every node told of a place answered, or took it")
		return
	}
	p.pending, p.round = woke, p.round+1
	p.due.set(p.within)
}
