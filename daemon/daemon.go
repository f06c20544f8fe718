// Package daemon runs the reboot pipeline whenever something it depends on may have changed:
// events from Consul blocking queries, the reboot-required files and a fallback tick, coalesced
// so that a burst makes one evaluation. What a batch of events calls for is decided from the
// state the last run left alone (see decide): nothing, a look at the lock, or a whole run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/rungroup"
	"github.com/rebootmgr/rebootmgr/watch"
)

// Pipeline is one run of the reboot pipeline.
type Pipeline interface {
	Run(ctx context.Context) (pipeline.Result, error)
	// LookAtLock is what a node waiting for the lock does when only the lock changed: nil when
	// a whole run is due (a place is free), else why not, with the time to look again.
	LookAtLock(ctx context.Context) (pipeline.Result, error)
	// LookAtQueue is LookAtLock on the queue's front alone: a node waiting for its turn, at its
	// tick (see pipeline.Pipeline.LookAtQueue).
	LookAtQueue(ctx context.Context) (pipeline.Result, error)
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
	// idle node lets Health go at every evaluation (the tick at least) for the set of its
	// services, and for each service at its turn only (see watch.HealthShares): the service's
	// idle daemons take turns reading it whole, about two a tick, and remember the members they
	// see, so that one that leaves cleanly still counts.
	Quiet  *watch.Pause
	Health *watch.HealthHold
	Turn   *watch.Pause
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
	// Clock is the pipeline's clock (pipeline.SystemClock when nil), which its Results' times
	// are of: it times the daemon's waits, its retries, deadlines, passes, refreshes and the
	// reboot timeout, with timers it can call off where the clock has them (see
	// pipeline.NewTimer).
	Clock pipeline.Clock
}

// Run runs the daemon until ctx ends (nil), a source fails, or the machine does not go down
// after a reboot (ErrStillRunning): see Add.
func (d *Daemon) Run(ctx context.Context) error {
	var g rungroup.Group
	d.Add(&g)
	return g.Run(ctx)
}

// Add adds the daemon's parts to g: each of its sources, the publisher of its presence (when
// there is one), and the loop, which evaluates once every source watches, then at each batch of
// events. The loop ends the group when its context ends or when the machine does not go down
// after a reboot (ErrStillRunning); a source, when it fails.
func (d *Daemon) Add(g *rungroup.Group) {
	var watching sync.WaitGroup
	watching.Add(len(d.Sources))
	for _, s := range d.Sources {
		g.Add(func(ctx context.Context) error {
			ready := sync.OnceFunc(watching.Done)
			err := s.Run(ctx, d.Events, ready)
			ready()
			if err != nil {
				return err
			}
			// A source that ends cleanly leaves the others be.
			<-ctx.Done()
			return nil
		})
	}
	var statuses chan presence
	if d.Presence != nil {
		statuses = make(chan presence, 1)
		g.Add(func(ctx context.Context) error { return d.publish(ctx, statuses) })
	}
	g.Add(func(ctx context.Context) error {
		// The first evaluation reads the state once every source watches it, so that no change
		// falls between the two.
		allWatching := make(chan struct{})
		go func() { watching.Wait(); close(allWatching) }()
		return d.runLoop(ctx, allWatching, statuses)
	})
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

// presence is a status to publish.
type presence struct {
	operator bool
	status   string
}

// publish publishes each status it is given, and the last one again every Refresh, until ctx
// ends. A status that cannot be published is logged once, and tried again at the next.
func (d *Daemon) publish(ctx context.Context, statuses <-chan presence) error {
	refresh := d.Refresh
	if refresh <= 0 {
		refresh = time.Minute
	}
	every := timer{clock: d.clock()}
	every.set(refresh)
	defer every.stop()
	var last presence
	have, failing := false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case last = <-statuses:
			have = true
		case <-every.C():
			every.set(refresh)
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

// waitForShutdown waits for the machine to go down after the reboot command.
func (d *Daemon) waitForShutdown(ctx context.Context) error {
	t := pipeline.NewTimer(d.clock(), d.RebootTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-t.C():
		d.Logger.Error("the machine did not go down after the reboot command: giving up; the next start reports that it did not reboot",
			logkey.Timeout, d.RebootTimeout)
		return fmt.Errorf("%w (%s)", ErrStillRunning, d.RebootTimeout)
	}
}

// logEvaluation says why the daemon runs the pipeline, and at which events.
func (d *Daemon) logEvaluation(evs []watch.Event, why string) {
	sources := make([]string, 0, len(evs))
	for _, ev := range evs {
		sources = append(sources, string(ev.Source))
	}
	d.Logger.Debug(why, logkey.Events, len(evs), logkey.Sources, sources, logkey.Latency, time.Since(evs[0].At))
}

// log writes one line per change of the node's status: the status, the gate and the reason.
func (d *Daemon) log(res pipeline.Result, err error, status string) {
	if err == nil {
		d.Logger.Info(status, logkey.Outcome, res.Outcome.String())
		return
	}
	gate := "error"
	level := slog.LevelError
	if e, ok := ending.Of(err); ok {
		gate = ending.GateName(err)
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
	if e, ok := ending.Of(err); ok {
		return e.Status + ": " + err.Error()
	}
	return "error, retrying: " + err.Error()
}
