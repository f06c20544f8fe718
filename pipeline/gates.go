package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/window"
)

// RebootedGate is the gate of a node whose holder entry says it is rebooting: its boot id must
// have changed since the reboot command ran (ran: the command was noted as run on this boot; a
// command that never ran is no reboot that failed, and the pipeline starts over).
func RebootedGate(node string, h lock.Holder, bootID string, ran bool) error {
	if h.Phase != lock.Rebooting || bootID != h.BootID || !ran {
		return nil
	}
	return gateFail(ErrNotRebooted, "the reboot lock says %s is rebooting since %s, but the boot id %s did not change: the reboot did not happen (check the reboot command; the lock stays until an operator unlocks it)",
		node, h.RebootStarted.Format(time.RFC3339), bootID)
}

func (p *Pipeline) checkStop(ctx context.Context) error {
	f, err := p.Store.Stop(ctx)
	if err != nil {
		return err
	}
	if f.Set {
		return stopError(f)
	}
	return nil
}

func stopError(f Flag) error {
	if f.Value == "" {
		return gateFail(ErrStopped, "stop flag is set: halted, nothing further is started")
	}
	return gateFail(ErrStopped, "stop flag is set (%s): halted, nothing further is started", clip.OneLine(f.Value))
}

func (p *Pipeline) checkDisabled(ctx context.Context) error {
	f, err := p.Store.Disabled(ctx, p.Node)
	if err != nil {
		return err
	}
	if f.Set {
		reason := clip.OneLine(f.Value)
		if reason == "" {
			reason = "no reason given"
		}
		if DisabledByTask(f.Value) {
			return &gateError{gate: ErrDisabled, msg: fmt.Sprintf("node %s is disabled: %s", p.Node, reason), err: errDisabledByTask}
		}
		return gateFail(ErrDisabled, "node %s is disabled: %s", p.Node, reason)
	}
	return nil
}

// stayGreen watches the health gate for StayGreen before the node takes the lock: a check that
// fails at any look in that time stops the run, so a flapping check does not let a node start.
func (p *Pipeline) stayGreen(ctx context.Context) error {
	if p.StayGreen <= 0 {
		return nil
	}
	look := min(p.StayGreen/10, time.Second)
	p.Logger.Info("health must stay green before the lock is taken", logkey.Gate, "stay green", logkey.For, p.StayGreen)
	deadline := p.Clock.After(p.StayGreen)
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-deadline:
			return p.checkHealth(ctx, "health, green for "+p.StayGreen.String())
		case <-p.Clock.After(look):
			if err := p.checkStop(ctx); err != nil {
				return err
			}
			if err := p.checkHealth(ctx, "health while staying green"); err != nil {
				return err
			}
		}
	}
}

// checkCooldown keeps the group's reboots apart: the next starts only when the cooldown since
// the last finished one has passed.
func (p *Pipeline) checkCooldown(ctx context.Context) error {
	if p.Cooldown <= 0 {
		return nil
	}
	l, _, err := p.Store.History(ctx)
	if err != nil {
		return err
	}
	return CooldownGate(l, p.Cooldown, p.Clock.Now())
}

// CooldownGate is the cooldown gate judged on the group's history at now: nil, or a "not now"
// error that knows when it opens.
func CooldownGate(l history.Log, cooldown time.Duration, now time.Time) error {
	if cooldown <= 0 {
		return nil
	}
	var last time.Time
	for _, e := range l.Entries {
		if e.Outcome == history.Finished && e.End.After(last) {
			last = e.End
		}
	}
	until := last.Add(cooldown)
	if last.IsZero() || !now.Before(until) {
		return nil
	}
	return &notBeforeError{
		gateError: gateError{gate: ErrOutsideWindow, msg: fmt.Sprintf("cooldown: the group's last reboot finished at %s; the next may start at %s", last.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))},
		until:     until,
	}
}

// earliest is the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// checkWindow is the reboot window gate: a node outside its windows, or on a blackout date,
// does not start (and does not hold the lock while it waits).
func (p *Pipeline) checkWindow() error {
	return WindowGate(p.Schedule, p.Clock.Now())
}

// WindowGate is the reboot window gate at now.
func WindowGate(s window.Schedule, now time.Time) error {
	if s.Open(now) {
		return nil
	}
	next := s.Next(now)
	if next.IsZero() {
		return gateFail(ErrOutsideWindow, "outside every reboot window, and none opens within 400 days")
	}
	return gateFail(ErrOutsideWindow, "outside the reboot window: the next opens at %s", next.Format(time.RFC3339))
}

// checkHealth is the health gate: every rule of every service of the node holds, with every
// reboot in flight anywhere in the fleet counted as a failing instance.
func (p *Pipeline) checkHealth(ctx context.Context, gate string) error {
	v, err := p.Store.View(ctx)
	if err != nil {
		return err
	}
	return p.checkHealthIn(ctx, v, gate)
}

// checkHealthIn is the health gate with the reboots in flight as v has them.
func (p *Pipeline) checkHealthIn(ctx context.Context, v View, gate string) error {
	return HealthIn(ctx, p.Health, p.Logger, v, p.Node, gate)
}
