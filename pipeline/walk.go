package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// walk meets the gates in their order (see gate.List), judged on s, and stops at the first
// that holds the node back; then it takes a place and prepares the reboot (see prepare). A node
// whose reboot happened meets only the gates that finish it, and finishes it; a node that holds
// a place from a run that did not reboot does not look for a request again, and gives its place
// back if a gate holds it back (see Run). A run that only looks for a request (CheckTriggers)
// and finds none ends at the trigger gate with nothing to do.
func (p *Pipeline) walk(ctx context.Context, s *gate.State) (Result, error) {
	v, _ := s.View.Get()
	h, held := v.Lock.Holder(p.Node)
	// A FleetLock host of this node's name may hold that place: its reboot is not this node's.
	held = held && !h.FleetLock()
	finishing := gate.Finishing(s)
	if held && !finishing {
		p.Logger.Info("this node holds the reboot lock from a run that did not reboot: starting over from the gates", logkey.Phase, h.Phase, logkey.Since, h.Since)
		p.seen.asked("the reboot lock it holds")
		p.holding = !p.DryRun
	}
	why := gate.OperatorRequest
	for _, g := range gate.List() {
		if (finishing && !g.Finishing) || (g.Name == gate.Trigger && (held || !p.CheckTriggers)) {
			continue
		}
		verdict, err := p.judge(ctx, s, g)
		if err != nil {
			return Result{}, err
		}
		if verdict.Skipped {
			continue
		}
		switch g.Name {
		case gate.Rebooted:
			if res, done, err := p.rebooted(ctx, h, s); done || err != nil {
				return res, err
			}
			// The reboot command never ran: over again from the gates, keeping the place.
			finishing, held, why, p.holding = false, true, h.TriggeredBy, true
		case gate.Trigger:
			a, _ := s.Request.Get()
			p.seen.asked(a.Why)
			if a.Why == "" {
				p.Logger.Info("no reboot required", logkey.Gate, gate.Trigger)
				return Result{Outcome: NothingToDo, Message: "no reboot required"}, nil
			}
			p.Logger.Info("reboot required", logkey.Gate, gate.Trigger, logkey.By, a.Why)
			why = a.Why
		case gate.StayGreen:
			if err := p.stayGreen(ctx); err != nil {
				return Result{}, err
			}
		}
	}
	return p.prepare(ctx, why)
}

// judge meets gate g: its verdict on s, and the error the run ends with where it holds the node
// back. At the stop flags a run first stops the group for a holder past its deadline (see
// stopOverdue); at the min reboot interval it reports, once, a request that the last reboot did
// not clear; held back by the cooldown, it works towards its place, keeping its turn.
func (p *Pipeline) judge(ctx context.Context, s *gate.State, g gate.Gate) (gate.Verdict, error) {
	if g.Name == gate.Stop {
		if err := p.stopOverdue(ctx, s); err != nil {
			return gate.Verdict{}, err
		}
	}
	v := g.Judged(s)
	if l, ok := s.History.Peek(); ok && g.Name == gate.Interval {
		last, _ := place.LastReboot(l, p.Node)
		p.lastReboot = &last.End
	}
	switch {
	case v.Pass && g.Name == gate.Health:
		rep, _ := s.Health.Peek()
		p.Logger.Info("health checks pass", logkey.Gate, gate.HealthGate, logkey.Services, len(rep.Services))
	case v.Pass:
	case g.Name == gate.Interval && errors.Is(v.Err, ending.ErrSignalNotCleared):
		p.notCleared(ctx, s, v.Err)
	case g.Name == gate.Rebooted && errors.Is(v.Err, ending.ErrNotRebooted):
		p.notRebooted(ctx, s, v.Err)
	case g.Name == gate.Cooldown:
		return v, working(v.Err)
	}
	return v, v.Err
}

// stopOverdue stops the group when a holder is past its deadline and its miss is not reported
// yet (see place.StopOverdue), and records and tells each stop it set; the stop gate then holds
// the run back (a dry run stops nothing, and ends there too).
func (p *Pipeline) stopOverdue(ctx context.Context, s *gate.State) error {
	if p.DryRun {
		return nil
	}
	if f, err := s.Stop.Get(); err != nil || f.Set {
		return nil
	}
	overdue, err := gate.Overdue(s)
	if err != nil || len(overdue) == 0 {
		// An error is the stop gate's to say.
		return nil
	}
	stopped, err := place.StopOverdue(ctx, p.Store, p.Logger, overdue, s.Now, "rebootmgr on "+p.Node)
	for _, o := range stopped {
		p.record(ctx, history.Entry{Node: o.Holder.Node, Start: o.Holder.RebootStarted, End: s.Now.UTC(), Outcome: history.DeadlinePassed, TriggeredBy: o.Holder.TriggeredBy})
		p.tell(ctx, NotifyGroupStopped, o.Reason)
	}
	return err
}

// NotRebootedAfter is how long a reboot may take to take the machine down: a boot id unchanged
// for longer after the reboot command is a reboot that did not happen, recorded and told.
const NotRebootedAfter = gate.NotRebootedAfter

// notRebooted reports a reboot that did not happen (gerr, the rebooted gate's) once it is
// NotRebootedAfter past the reboot command: an entry in the group's history and a
// notification, however often it is seen until an operator unlocks the node. A reboot command
// that failed was reported when it failed.
func (p *Pipeline) notRebooted(ctx context.Context, s *gate.State, gerr error) {
	v, _ := s.View.Peek()
	h, _ := v.Lock.Holder(p.Node)
	if p.DryRun || s.Now.Sub(h.RebootStarted) < NotRebootedAfter {
		// The machine may be on its way down still.
		return
	}
	l, err := s.History.Get()
	if err != nil {
		return
	}
	for _, e := range l.Entries {
		if e.Node == p.Node && (e.Outcome == history.NotRebooted || e.Outcome == history.RebootFailed) && !e.End.Before(h.RebootStarted) {
			return
		}
	}
	now := p.Clock.Now().UTC()
	p.record(ctx, history.Entry{Node: p.Node, Start: h.RebootStarted, End: now, Outcome: history.NotRebooted, Detail: gerr.Error(), TriggeredBy: h.TriggeredBy})
	p.tell(ctx, NotifyNotRebooted, ending.Resolution(gerr.Error(), gerr, p.Node, ""))
}

// notCleared reports a request that the node's last reboot did not clear (gerr, the min reboot
// interval's) once: a warning, a notification and an entry in the group's history, however
// often it is seen until it clears or the interval has passed.
func (p *Pipeline) notCleared(ctx context.Context, s *gate.State, gerr error) {
	l, _ := s.History.Peek()
	a, _ := s.Request.Peek()
	last, _ := place.LastReboot(l, p.Node)
	for _, e := range l.Entries {
		if e.Node == p.Node && e.Outcome == history.SignalNotCleared && e.End.After(last.End) {
			return
		}
	}
	p.Logger.Warn("the reboot signal did not clear after the reboot: not rebooting again before the min reboot interval has passed", logkey.Gate, "min reboot interval", logkey.By, a.Why, logkey.LastReboot, last.End.UTC())
	if !p.DryRun {
		now := p.Clock.Now().UTC()
		p.record(ctx, history.Entry{Node: p.Node, Start: now, End: now, Outcome: history.SignalNotCleared, Detail: gerr.Error(), TriggeredBy: a.Why})
		p.tell(ctx, NotifySignalNotCleared, gerr.Error())
	}
}

// rebooted is what a run does for a node whose reboot happened (h, its entry as s read it): it
// finishes it (done). A reboot command that never ran (the run ended between the phase change
// and the command) is no reboot: the entry goes back to preparing, keeping the place, and the
// run goes on with the gates (not done).
func (p *Pipeline) rebooted(ctx context.Context, h lock.Holder, s *gate.State) (res Result, done bool, err error) {
	log := p.Logger
	log.Info("this node holds the reboot lock: finishing the reboot", logkey.Phase, h.Phase, logkey.Since, h.Since)
	if h.Phase != lock.Rebooting {
		res, err := p.finish(ctx, h)
		return res, true, err
	}
	b, _ := s.Boot.Peek()
	if b.ID != h.BootID {
		if !p.DryRun {
			if h, err = p.updateHolder(ctx, func(h lock.Holder) lock.Holder { h.Phase = lock.Finishing; return h }); err != nil {
				return Result{}, true, err
			}
		}
		log.Info("node rebooted", logkey.Step, "finishing", logkey.BootID, b.ID)
		res, err := p.finish(ctx, h)
		return res, true, err
	}
	log.Warn("the reboot lock says this node is rebooting, but the reboot command never ran (the run ended between the phase change and the command): starting over from the gates, keeping the place", logkey.Since, h.RebootStarted)
	if p.DryRun {
		return Result{Outcome: DryRunPassed, Message: "dry run: the reboot command never ran; would put the lock back to preparing and start over from the gates"}, true, nil
	}
	if err := p.undoReboot(ctx, nil); err != nil {
		return Result{}, true, err
	}
	return Result{}, false, nil
}

// earliest is the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
