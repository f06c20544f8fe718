package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// prepare is the part before the reboot, in the README's phases, once the gates passed (see
// walk): the place in the lock, the pre-boot tasks, the confirmation after the settle, and the
// reboot. why is what the reboot is for.
func (p *Pipeline) prepare(ctx context.Context, why string) (Result, error) {
	if err := p.takePlace(ctx, why); err != nil {
		return Result{}, err
	}
	p.holding = !p.DryRun
	// A stop flag set between the read the place was judged on and its write keeps the tasks
	// from starting.
	if err := p.checkStop(ctx); err != nil {
		return Result{}, err
	}
	if err := p.preBoot(ctx); err != nil {
		return Result{}, err
	}
	if res, done, err := p.confirm(ctx); done || err != nil {
		return res, err
	}
	if p.DryRun {
		p.Logger.Info("dry run: every gate passed; would reboot now")
		return Result{Outcome: DryRunPassed, Message: "dry run: every gate passed, would reboot"}, nil
	}
	return p.reboot(ctx, why)
}

// takePlace takes a place in the lock (a dry run only says whether it could).
func (p *Pipeline) takePlace(ctx context.Context, why string) error {
	if p.DryRun {
		return p.checkLockFree(ctx)
	}
	return p.acquire(ctx, why)
}

// preBoot runs the pre-boot tasks and settles.
func (p *Pipeline) preBoot(ctx context.Context) error {
	if err := p.runTasks(ctx, PreBoot); err != nil {
		return err
	}
	return p.settle(ctx)
}

// confirm judges again, after the settle and on a new snapshot, what may have changed
// meanwhile: the stop flags, disabled, the place still held, the request still there, the
// window, health, the alerts. done is a run that ends here without an error (the request was withdrawn: the
// place is given back).
func (p *Pipeline) confirm(ctx context.Context) (res Result, done bool, err error) {
	s := p.snapshot(ctx)
	s.HealthLook = "health after settle, counting every reboot in flight"
	for _, name := range []string{gate.Stop, gate.Disabled} {
		if _, err := p.judge(ctx, s, gate.Named(name)); err != nil {
			return Result{}, false, err
		}
	}
	if !p.DryRun {
		v, err := s.View.Get()
		if err != nil {
			return Result{}, false, err
		}
		if _, err := p.holderIn(v.Lock); err != nil {
			p.holding = false
			return Result{}, false, err
		}
	}
	if p.CheckTriggers {
		a, err := s.Request.Get()
		if err != nil {
			return Result{}, false, err
		}
		p.seen.asked(a.Why)
		if a.Why == "" {
			p.Logger.Info("reboot request withdrawn while preparing: not rebooting", logkey.Gate, gate.Trigger)
			if p.holding {
				p.abandon(ctx, nil)
				p.holding = false
			}
			return Result{Outcome: NothingToDo, Message: "reboot request withdrawn: not rebooting"}, true, nil
		}
	}
	for _, name := range []string{gate.Window, gate.Health, gate.Alerts} {
		if _, err := p.judge(ctx, s, gate.Named(name)); err != nil {
			return Result{}, false, err
		}
	}
	return Result{}, false, nil
}

// reboot is the last step: maintenance on, the announcement, the phase change to rebooting
// with the last read behind it, the note, and the reboot command. From the phase change on,
// the place stays: the node is going down, or the command failed and the next run must see
// that it did not reboot (exit 103) rather than try again.
func (p *Pipeline) reboot(ctx context.Context, why string) (Result, error) {
	log := p.Logger
	if err := p.checkStop(ctx); err != nil {
		return Result{}, err
	}
	if err := p.Store.StartMaintenance(ctx, p.Node, maintenanceReason(p.Node)); err != nil {
		return Result{}, err
	}
	log.Info("node in maintenance", logkey.Step, "maintenance")
	bootID, err := p.BootID()
	if err != nil {
		return Result{}, err
	}
	// The notification goes out before the last looks, so that nothing slow stands between
	// them and the reboot command: a webhook may take seconds to answer, and whatever failed
	// meanwhile, anywhere in the fleet, must still stop the reboot. So health is judged once
	// more after it, then the stop flag, the lock and the limit are read a last time.
	p.tell(ctx, NotifyRebootStarted, "requested by "+why)
	if err := p.checkHealth(ctx, "health after the reboot was announced, counting every reboot in flight"); err != nil {
		return Result{}, err
	}
	now := p.Clock.Now().UTC()
	// The request is taken before the phase change, which records the index of the take, and
	// the stop flag is still read after both (see beginReboot).
	trigger, err := p.takeRequest(ctx, now)
	if err != nil {
		return Result{}, err
	}
	if err := p.beginReboot(ctx, func(h lock.Holder) lock.Holder {
		h.Phase = lock.Rebooting
		h.BootID = bootID
		h.RebootStarted = now
		h.TriggerIndex = trigger.index
		if p.Deadline > 0 {
			h.Deadline = now.Add(p.Deadline)
		}
		return h
	}); err != nil {
		p.giveBack(ctx, trigger)
		if errors.Is(err, ending.ErrLockLost) {
			p.holding = false
		}
		if errors.Is(err, ending.ErrStopped) {
			log.Warn("stop flag set after the reboot was announced: not rebooting", logkey.Gate, "stop")
		}
		return Result{}, err
	}
	if err := p.Note.Write(bootID); err != nil {
		_ = p.undoReboot(ctx, err)
		p.giveBack(ctx, trigger)
		return Result{}, err
	}
	p.holding = false
	log.Info("running the reboot command", logkey.Step, "reboot", logkey.BootID, bootID)
	if err := p.Rebooter.Reboot(ctx); err != nil {
		reason := clip.OneLine(err.Error())
		p.record(ctx, history.Entry{Node: p.Node, Start: now, End: p.Clock.Now().UTC(), Outcome: history.RebootFailed, Detail: reason, TriggeredBy: why})
		p.tell(ctx, NotifyRebootFailed, reason+"; the lock stays in phase rebooting until an operator looks (rebootmgr unlock "+p.Node+" --force)")
		return Result{}, fmt.Errorf("reboot command failed (the lock stays in phase rebooting; the next run reports that the node did not reboot): %w", err)
	}
	return Result{Outcome: RebootStarted, Message: "reboot started"}, nil
}

// undoReboot puts this node's entry back to preparing, as it was before the phase change to
// rebooting, when the reboot command will not run (cause, logged) or never ran.
func (p *Pipeline) undoReboot(ctx context.Context, cause error) error {
	_, err := p.updateHolder(ctx, func(h lock.Holder) lock.Holder {
		h.Phase, h.BootID, h.RebootStarted, h.TriggerIndex, h.Deadline = lock.Preparing, "", time.Time{}, 0, time.Time{}
		return h
	})
	if err != nil {
		p.Logger.Error("could not put the reboot lock back to preparing: the next run finds the reboot command never ran and starts over", logkey.Err, err)
	} else if cause != nil {
		p.Logger.Warn("not running the reboot command: the lock is back to preparing", logkey.Reason, cause.Error())
	}
	return err
}

// releasesOnError says whether an error before the reboot gives the lock back.
func (p *Pipeline) releasesOnError(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, ending.ErrStopped) && !errors.Is(err, ending.ErrLockLost) && !errors.Is(err, place.ErrWaitInPlace)
}

// abandon gives the lock back after a run that will not reboot, and ends the maintenance
// this or an earlier run may have started.
func (p *Pipeline) abandon(ctx context.Context, cause error) {
	if err := p.Store.EndMaintenance(ctx, p.Node); err != nil {
		p.Logger.Error("could not end maintenance", logkey.Err, err)
	}
	if err := p.release(ctx); err != nil {
		p.Logger.Error("could not release the reboot lock", logkey.Err, err)
		return
	}
	if cause != nil {
		p.Logger.Info("reboot lock released", logkey.Reason, cause.Error())
	}
}

func maintenanceReason(node string) string {
	return "rebootmgr: rebooting " + node
}
