// Package daemon runs the reboot pipeline whenever something it depends on may have changed:
// events from Consul blocking queries, the reboot-required files and a fallback tick, coalesced
// so that a burst makes one evaluation.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/watch"
)

// Pipeline is one run of the reboot pipeline.
type Pipeline interface {
	Run(ctx context.Context) (pipeline.Result, error)
	// LookAtLock is what a node waiting for the lock does when only the lock changed: nil when
	// a whole run is due (a place is free), else why not, with the time to look again.
	LookAtLock(ctx context.Context) (pipeline.Result, error)
	// PassTurns passes over the nodes this daemon woke for a place that did not answer (see
	// pipeline.PassTurns), and returns whom that woke in turn.
	PassTurns(ctx context.Context, woke []lock.QueueEntry, more int) ([]lock.QueueEntry, error)
}

// Source feeds events until its context ends. It calls ready once, when it has read the
// state it watches for the first time (or failed to): changes after that are events.
type Source interface {
	Run(ctx context.Context, events *watch.Events, ready func()) error
}

// Notifier tells the service manager how the daemon is.
type Notifier interface {
	Ready(status string) error
	Status(status string) error
}

// Presence publishes the daemon's status where every node sees it (its check in Consul).
type Presence interface {
	Publish(ctx context.Context, operator bool, status string) error
}

// deadlineSlack is how long after a holder's deadline the daemon looks again.
const deadlineSlack = 100 * time.Millisecond

// ErrStillRunning means the machine did not go down after the reboot command.
var ErrStillRunning = errors.New("still running after the reboot command")

// Daemon is the always-on loop.
type Daemon struct {
	Pipeline Pipeline
	Sources  []Source
	Events   *watch.Events
	// RebootTimeout is how long the daemon waits for the machine to go down after the reboot
	// command before it gives up loudly.
	RebootTimeout time.Duration
	Notifier      Notifier
	Logger        *slog.Logger
	// Retry paces evaluations after operational errors (Consul unreachable and the like).
	Retry func() backoff.BackOff
	// Observe, when set, hears of every run's result (for metrics).
	Observe func(res pipeline.Result, err error)
	// Node and Group name the node, for the commands that resolve a status waiting for an
	// operator.
	Node, Group string
	// Presence, when set, hears of every change of the status, and of the last one again
	// every Refresh (so that a daemon that no longer says anything shows as gone).
	Presence Presence
	Refresh  time.Duration
	// Quiet, Health and Turn, when set, hold the watches a node does not need as it is. Quiet
	// (the lock, the queue, the holders, the Python rebootmgr's keys) and Health (the health of
	// its services) are held while nothing asks the node to reboot, and while it waits for its
	// turn in its group's queue; Turn (its turn key, see pipeline.Woken) unless it waits for its
	// turn. A hand-off then wakes the nodes a place opened for, not every node of the group,
	// and no node re-reads a large service's health at every reboot of one of its members. An
	// idle node lets Health go for one change at every evaluation (the tick at least): its reads
	// remember the members of the services, so that one that leaves cleanly still counts.
	Quiet, Health, Turn *watch.Pause
	// Claims, when set, holds the watch of the fleet's claims of room unless the node yields a
	// place to a claim (lock.ErrYields): then it looks again once that node has looked.
	Claims *watch.Pause
	// Silent, when set, names the nodes whose daemons do not tell the nodes waiting in a queue
	// when they give a place back (an older rebootmgr's: see store.WakesMeta). While there are
	// any, a node waiting for its turn does not hold its watches of the lock: a place they give
	// back would go unheard until the tick.
	Silent func(ctx context.Context) ([]string, error)
	// AnswerWithin is how long the nodes this daemon woke for a place have to answer before it
	// passes over them (lock.AnswerWithin when zero; see pipeline.PassTurns).
	AnswerWithin time.Duration
	// Now is the pipeline's clock, which its Results' times are of (time.Now when nil).
	Now func() time.Time
}

// until is how long until t, a time of the pipeline's clock.
func (d *Daemon) until(t time.Time) time.Duration {
	if d.Now == nil {
		return time.Until(t)
	}
	return t.Sub(d.Now())
}

// Run runs until ctx ends (nil), a source fails, or the machine does not go down after a
// reboot (ErrStillRunning).
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, len(d.Sources))
	var wg, watching sync.WaitGroup
	watching.Add(len(d.Sources))
	for _, s := range d.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready := sync.OnceFunc(watching.Done)
			defer ready()
			if err := s.Run(ctx, d.Events, ready); err != nil {
				failed <- err
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	publish := func(bool, string) {}
	if d.Presence != nil {
		statuses := make(chan presence, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.publish(ctx, statuses)
		}()
		publish = func(operator bool, status string) {
			select {
			case <-statuses: // a status not published yet is replaced by the newer one
			default:
			}
			statuses <- presence{operator, status}
		}
	}

	// The first evaluation reads the state once every source watches it, so that no change
	// falls between the two.
	allWatching := make(chan struct{})
	go func() { watching.Wait(); close(allWatching) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	case <-allWatching:
	}

	retry := d.Retry
	if retry == nil {
		retry = watch.DefaultRetry
	}
	b := retry()
	var again, deadline <-chan time.Time
	// pass: when the nodes this daemon woke for a place have had their time to answer (see
	// pipeline.PassTurns).
	passes := passer{within: d.AnswerWithin}
	if passes.within <= 0 {
		passes.within = lock.AnswerWithin
	}
	last := ""
	d.Events.Send(watch.Event{Source: watch.SourceStart})
	// idle: the last run found nothing to do (no request, no place held).
	ready, waitingForLock, idle := false, false, false
	// waitingTurn: the last run waits for its turn in the group's queue (see Quiet); yielding:
	// it leaves a place to a node with less room (see Claims).
	waitingTurn, yielding := false, false
	// inFlight: the reboots in flight the last run counted (see pipeline.NoneLanded); queued:
	// the node waits in its group's queue (see pipeline.Seen.Queued).
	var inFlight []string
	queued := false
	hold := func() {
		d.Quiet.Set(idle || waitingTurn)
		d.Health.Set(idle || waitingTurn)
		d.Turn.Set(!waitingTurn)
		d.Claims.Set(!yielding)
	}
	hold()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return err
		case <-d.Events.Wake():
		case <-again:
			again = nil
			d.Events.Send(watch.Event{Source: watch.SourceRetry})
			continue
		case <-deadline:
			deadline = nil
			d.Events.Send(watch.Event{Source: watch.SourceDeadline})
			continue
		case <-passes.due:
			passes.pass(ctx, d)
			continue
		}
		evs := d.Events.Take()
		if len(evs) == 0 {
			continue
		}
		if idle && (onlyLockEvents(evs) || onlyFrom(evs, watch.SourceHealth)) {
			// Nothing asks this node to reboot, and it holds no place: another node's lock, limit,
			// queue or holders, or the health of its services, changed.
			d.Logger.Debug("idle, and only the locks or health changed: not evaluating")
			continue
		}
		if waitingTurn && onlyFrom(evs, watch.SourceLock, watch.SourceHolders, watch.SourcePython, watch.SourceHealth, watch.SourceClaims) {
			// Held watches say once what changed since they were held: this node hears of a place
			// from its turn key.
			d.Logger.Debug("waiting for its turn in the group's queue, and only the locks or health changed: not evaluating")
			continue
		}
		if onlyHolderEvents(evs) && !errors.Is(lastErr, pipeline.ErrUnhealthy) && !errors.Is(lastErr, pipeline.ErrLockHeld) {
			// Another group's holders, or the Python rebootmgr's lock, changed: that matters to a
			// node waiting for health (a reboot in flight counts as failing) or for the lock, not
			// to one with nothing to do.
			d.Logger.Debug("only the fleet's holders or the Python rebootmgr's lock changed, and this node waits for neither health nor the lock: not evaluating")
			continue
		}
		if errors.Is(lastErr, pipeline.ErrUnhealthy) && onlyLockEvents(evs) {
			// Waiting for health, and only the locks changed: a reboot taking a place, or moving
			// on, leaves no rule more room; only one that ended does. A look at the locks says
			// whether one did.
			res, err := d.Pipeline.LookAtLock(ctx)
			if (err == nil || pipeline.Gate(err) != nil) && pipeline.NoneLanded(inFlight, res.Seen.InFlight) {
				d.Logger.Debug("waiting for health, and no reboot in flight ended: not evaluating")
				if !res.Recheck.IsZero() {
					deadline = time.After(d.until(res.Recheck) + deadlineSlack)
				}
				continue
			}
		}
		d.logEvaluation(evs)
		if idle {
			// Each held health watch asks once more, and hears the next change (a member new to a
			// service is remembered): once an evaluation, the tick's at least.
			d.Health.Set(false)
		}
		var res pipeline.Result
		var err error
		looked := waitingForLock && queued && (onlyLockEvents(evs) || onlyFrom(evs, watch.SourceLook))
		if looked {
			// Waiting for the lock in the queue, and only the lock changed (or this node was told
			// to look at it: a holder's deadline changed): the whole run is needed only once there
			// is a place. (A node whose entry could not be written runs whole, and joins then.)
			d.Logger.Debug("waiting for the lock, and only the lock changed: looking at the lock alone")
			res, err = d.Pipeline.LookAtLock(ctx)
			looked = err != nil
		}
		if !looked {
			res, err = d.Pipeline.Run(ctx)
		}
		if ctx.Err() != nil {
			d.Logger.Info("shutting down: the reboot lock stays as it is")
			return nil
		}
		passes.woke(res.Seen.Woke)
		waitingForLock = errors.Is(err, pipeline.ErrLockHeld)
		inFlight, queued = res.Seen.InFlight, res.Seen.Queued
		if turn := pipeline.WaitsForTurn(res, err) && d.allWake(ctx); turn != waitingTurn {
			waitingTurn = turn
			if turn {
				d.Logger.Debug("waiting for its turn in the group's queue: holding its watches of the lock, the holders and health until a place opens for it")
			}
		}
		lastErr = err
		yielding = errors.Is(err, lock.ErrYields)
		idle = err == nil && res.Outcome == pipeline.NothingToDo
		hold()
		if d.Observe != nil {
			d.Observe(res, err)
		}
		deadline = nil
		if !res.Recheck.IsZero() {
			// A holder's deadline is a moment nothing else announces: look again just after it.
			deadline = time.After(d.until(res.Recheck) + deadlineSlack)
		}
		status := pipeline.Resolution(Status(res, err), err, d.Node, d.Group)
		if status != last {
			d.log(res, err, status)
			last = status
			publish(pipeline.WaitsForOperator(err), status)
		}
		if !ready {
			_ = d.Notifier.Ready(status)
			ready = true
		} else {
			_ = d.Notifier.Status(status)
		}
		switch {
		case err == nil && res.Outcome == pipeline.RebootStarted:
			return d.waitForShutdown(ctx)
		case err != nil && pipeline.Gate(err) == nil:
			// Operational trouble: try again after a backoff, events or not.
			again = time.After(b.NextBackOff())
		default:
			b.Reset()
			again = nil
		}
	}
}

// allWake says whether every daemon registered tells the nodes waiting in a queue when it gives
// a place back (see Silent); not when that cannot be read.
func (d *Daemon) allWake(ctx context.Context) bool {
	if d.Silent == nil {
		return true
	}
	silent, err := d.Silent(ctx)
	switch {
	case err != nil:
		d.Logger.Warn("could not read which daemons tell the queue of a place they give back: watching the lock while waiting for its turn", logkey.Err, err)
		return false
	case len(silent) > 0:
		d.Logger.Debug("daemons of an older rebootmgr do not tell the queue of a place they give back: watching the lock while waiting for its turn", logkey.Nodes, silent)
		return false
	}
	return true
}

// passer follows the nodes a daemon woke for a place until they answered (see
// pipeline.PassTurns): one pass when they had their time, and another for those each pass woke,
// reaching further into the queue each time.
type passer struct {
	within  time.Duration
	due     <-chan time.Time
	pending []lock.QueueEntry
	round   int
}

// woke notes the nodes a run woke (none: nothing to follow, or the last are followed still).
func (p *passer) woke(entries []lock.QueueEntry) {
	if len(entries) == 0 {
		return
	}
	p.pending, p.round = entries, 0
	p.due = time.After(p.within)
}

// pass passes over those of the nodes woken that did not answer, and follows whom that woke.
func (p *passer) pass(ctx context.Context, d *Daemon) {
	p.due = nil
	woke, err := d.Pipeline.PassTurns(ctx, p.pending, pipeline.PassReach(p.round))
	if err != nil {
		d.Logger.Warn("could not pass over the nodes woken for a place that did not answer: they keep it until their turn passes", logkey.Err, err)
		return
	}
	if len(woke) == 0 {
		d.Logger.Debug("every node told of a place answered, or took it")
		return
	}
	p.pending, p.round = woke, p.round+1
	p.due = time.After(p.within)
}

// presence is a status to publish.
type presence struct {
	operator bool
	status   string
}

// publish publishes each status it is given, and the last one again every Refresh, until ctx
// ends. A status that cannot be published is logged once, and tried again at the next.
func (d *Daemon) publish(ctx context.Context, statuses <-chan presence) {
	refresh := d.Refresh
	if refresh <= 0 {
		refresh = time.Minute
	}
	t := time.NewTicker(refresh)
	defer t.Stop()
	var last presence
	have, failing := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case last = <-statuses:
			have = true
		case <-t.C:
		}
		if !have {
			continue
		}
		switch err := d.Presence.Publish(ctx, last.operator, last.status); {
		case err != nil && ctx.Err() == nil && !failing:
			d.Logger.Warn("could not publish the daemon's status in Consul: other nodes see it as down until it can be", logkey.Err, err)
			failing = true
		case err == nil && failing:
			d.Logger.Info("publishing the daemon's status in Consul again")
			failing = false
		}
	}
}

// onlyLockEvents says whether every event is a change of the lock record or queue, the limit,
// the fleet's holders or claims, or the Python rebootmgr's lock.
func onlyLockEvents(evs []watch.Event) bool {
	return onlyFrom(evs, watch.SourceLock, watch.SourceLimit, watch.SourceHolders, watch.SourceClaims, watch.SourcePython)
}

// onlyHolderEvents says whether every event is a change of the fleet's holders or of the
// Python rebootmgr's lock: reboots in flight elsewhere. The Python rebootmgr takes its lock on
// every run, and rebootmgr's fleet-wide marker changes with the fleet's holders.
func onlyHolderEvents(evs []watch.Event) bool {
	return onlyFrom(evs, watch.SourceHolders, watch.SourcePython)
}

// onlyFrom says whether every event comes from one of sources; a full batch may have dropped
// others, so it never does.
func onlyFrom(evs []watch.Event, sources ...watch.Source) bool {
	if len(evs) >= watch.MaxPending {
		return false
	}
	for _, ev := range evs {
		if !slices.Contains(sources, ev.Source) {
			return false
		}
	}
	return true
}

// waitForShutdown waits for the machine to go down after the reboot command.
func (d *Daemon) waitForShutdown(ctx context.Context) error {
	t := time.NewTimer(d.RebootTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-t.C:
		d.Logger.Error("the machine did not go down after the reboot command: giving up; the next start reports that it did not reboot",
			logkey.Timeout, d.RebootTimeout)
		return fmt.Errorf("%w (%s)", ErrStillRunning, d.RebootTimeout)
	}
}

func (d *Daemon) logEvaluation(evs []watch.Event) {
	sources := make([]string, 0, len(evs))
	for _, ev := range evs {
		sources = append(sources, string(ev.Source))
	}
	d.Logger.Debug("evaluating", logkey.Events, len(evs), logkey.Sources, sources, logkey.Latency, time.Since(evs[0].At))
}

// log writes one line per change of the node's status: the status, the gate and the reason.
func (d *Daemon) log(res pipeline.Result, err error, status string) {
	if err == nil {
		d.Logger.Info(status, logkey.Outcome, res.Outcome.String())
		return
	}
	gate := "error"
	level := slog.LevelError
	if e, ok := pipeline.EndingOf(err); ok {
		gate = pipeline.GateName(err)
		if !e.Operator {
			level = slog.LevelInfo
		}
	}
	if errors.Is(err, health.ErrMalformedTag) {
		// The service's definition is wrong: an operator must fix it.
		level = slog.LevelError
	}
	d.Logger.Log(context.Background(), level, status, logkey.Gate, gate)
}

// Status is the one line that says where the node is.
func Status(res pipeline.Result, err error) string {
	if err == nil {
		switch res.Outcome {
		case pipeline.RebootStarted:
			return "rebooting"
		case pipeline.Finished:
			return "idle: reboot finished"
		case pipeline.NothingToDo:
			return "idle: " + res.Message
		}
		return res.Message
	}
	if errors.Is(err, health.ErrMalformedTag) {
		return "configuration error, waiting for the tags to be fixed: " + err.Error()
	}
	if e, ok := pipeline.EndingOf(err); ok {
		return e.Status + ": " + err.Error()
	}
	return "error, retrying: " + err.Error()
}
