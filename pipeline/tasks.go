package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

func (p *Pipeline) settleTime(ctx context.Context) (time.Duration, error) {
	if p.Settle != SettleAuto {
		return p.Settle, nil
	}
	rep, err := p.health().Check(ctx, p.Node, nil)
	if err != nil {
		return 0, err
	}
	return min(rep.Settle, MaxSettle), nil
}

// settle waits until the checks have had time to run again, or the stop flag appears.
func (p *Pipeline) settle(ctx context.Context) error {
	d, err := p.settleTime(ctx)
	if err != nil {
		return err
	}
	if p.DryRun {
		p.Logger.Info("dry run: would settle", logkey.Step, "settle", logkey.Duration, d)
		return nil
	}
	if d <= 0 {
		return nil
	}
	p.Logger.Info("settling: waiting for the checks to run again", logkey.Step, "settle", logkey.Duration, d)
	return p.whileNotStopped(ctx, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-p.Clock.After(d):
			return nil
		}
	})
}

// runTasks runs the tasks of phase; a stop flag ends the pre-boot tasks, never the post-boot
// ones (see finish).
//
// Tasks that cannot be listed (a tasks directory missing or unsafe) are an error of the
// configuration, the same in every phase (before the reboot it is the tasks gate's): it marks
// nothing, and a node after its reboot keeps its place, in maintenance, until it is fixed.
func (p *Pipeline) runTasks(ctx context.Context, phase string) error {
	if err := p.Tasks.Validate(); err != nil {
		return fmt.Errorf("%s tasks: %w", phaseName(phase), err)
	}
	run := func(ctx context.Context) error { return p.Tasks.Run(ctx, phase, p.DryRun) }
	var err error
	if phase == PreBoot {
		err = p.whileNotStopped(ctx, run)
	} else {
		err = run(ctx)
	}
	if err == nil || errors.Is(err, ending.ErrStopped) || ctx.Err() != nil {
		return err
	}
	reason := phaseName(phase) + " " + err.Error()
	if !p.DryRun {
		now := p.Clock.Now().UTC()
		mark := ending.TaskMark(reason, now)
		p.unrecorded = mark
		if derr := p.recordDisabled(ctx); derr != nil {
			p.Logger.Error("could not mark the node disabled: halted until it can", logkey.Err, derr)
		} else {
			p.Logger.Warn("node marked disabled: an operator must look and clear the mark", logkey.Reason, reason)
		}
		start := now
		if h, herr := p.holder(ctx); herr == nil {
			start = h.Since
		}
		p.record(ctx, history.Entry{Node: p.Node, Start: start, End: now, Outcome: history.TaskFailed, Detail: reason})
		p.tell(ctx, NotifyTaskFailed, reason+"; the node is disabled")
	}
	return ending.Wrap(ending.ErrTaskFailed, err, "%s tasks", phaseName(phase))
}

// recordDisabled writes the disabled mark a failed task called for, if one is still unwritten.
// A mark that cannot be written halts the node: nothing else runs until it is.
func (p *Pipeline) recordDisabled(ctx context.Context) error {
	if p.unrecorded == "" {
		return nil
	}
	if err := p.Store.SetDisabled(ctx, p.Node, p.unrecorded); err != nil {
		return ending.Wrap(ending.ErrDisabled, err, "a task failed and this node must be disabled (%s), but the mark cannot be written: halted, nothing runs until it can be", clip.OneLine(p.unrecorded))
	}
	p.unrecorded = ""
	return nil
}

func phaseName(phase string) string {
	if phase == PreBoot {
		return "pre-boot"
	}
	return "post-boot"
}

// whileNotStopped runs fn with a context that ends, with ending.ErrStopped as its cause, as soon as
// the stop flag appears.
func (p *Pipeline) whileNotStopped(ctx context.Context, fn func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := p.Store.WaitStop(wctx)
		if err == nil && f.Set {
			p.Logger.Warn("stop flag appeared: halting", logkey.Value, clip.OneLine(f.Value))
			cancel(place.StopError(f))
		}
	}()
	err := fn(wctx)
	cancel(nil)
	<-done
	if cause := context.Cause(wctx); errors.Is(cause, ending.ErrStopped) {
		return cause
	}
	return err
}
