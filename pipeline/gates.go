package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/window"
)

// RebootedGate is the gate of a node whose holder entry says it is rebooting: its boot id must
// have changed since the reboot command ran (ran: the command was noted as run on this boot; a
// command that never ran is no reboot that failed, and the pipeline starts over).
func RebootedGate(node string, h lock.Holder, bootID string, ran bool) error {
	if h.Phase != lock.Rebooting || bootID != h.BootID || !ran {
		return nil
	}
	return ending.Fail(ending.ErrNotRebooted, "the reboot lock says %s is rebooting since %s, but the boot id %s did not change: the reboot did not happen (check the reboot command; the lock stays until an operator unlocks it)",
		node, h.RebootStarted.Format(time.RFC3339), bootID)
}

func (p *Pipeline) checkStop(ctx context.Context) error {
	f, err := p.Store.Stop(ctx)
	if err != nil {
		return err
	}
	if f.Set {
		return place.StopError(f)
	}
	return nil
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
			return &ending.Error{Gate: ending.ErrDisabled, Msg: fmt.Sprintf("node %s is disabled: %s", p.Node, reason), Err: ending.ErrDisabledByTask}
		}
		return ending.Fail(ending.ErrDisabled, "node %s is disabled: %s", p.Node, reason)
	}
	return nil
}

// stayGreen watches the health gate for StayGreen before the node takes the lock: a check that
// fails at any look in that time stops the run, so a flapping check does not let a node start.
// The node keeps its turn in the group's queue meanwhile (see keepTurn).
func (p *Pipeline) stayGreen(ctx context.Context) error {
	if p.StayGreen <= 0 {
		return nil
	}
	look := min(p.StayGreen/10, time.Second)
	p.Logger.Info("health must stay green before the lock is taken", logkey.Gate, "stay green", logkey.For, p.StayGreen)
	p.keepTurn(ctx)
	start := p.Clock.Now()
	kept := start
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-p.Clock.After(look):
		}
		now := p.Clock.Now()
		if now.Sub(start) >= p.StayGreen {
			return p.checkHealth(ctx, "health, green for "+p.StayGreen.String())
		}
		if err := p.checkStop(ctx); err != nil {
			return err
		}
		if err := p.checkHealth(ctx, "health while staying green"); err != nil {
			return err
		}
		if now.Sub(kept) >= lock.KeepEvery {
			p.keepTurn(ctx)
			kept = now
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
	return CooldownGate(l, p.Cooldown, p.Clock.Now(), p.Sightings)
}

// CooldownGate is the cooldown gate judged on the group's history at now: nil, or a "not now"
// error that knows when it opens. The end of the last reboot was written with the clock of the
// node that rebooted: it is judged by when seen saw it (see lock.Sightings).
func CooldownGate(l history.Log, cooldown time.Duration, now time.Time, seen *lock.Sightings) error {
	if cooldown <= 0 {
		return nil
	}
	var last time.Time
	for _, e := range l.Entries {
		if e.Outcome == history.Finished && e.End.After(last) {
			last = e.End
		}
	}
	last = seen.At("history/finished", last, now)
	until := last.Add(cooldown)
	if last.IsZero() || !now.Before(until) {
		return nil
	}
	return &ending.Error{Gate: ending.ErrOutsideWindow, Name: "cooldown", Until: until,
		Msg: fmt.Sprintf("cooldown: the group's last reboot finished at %s; the next may start at %s", last.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))}
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
		return ending.Fail(ending.ErrOutsideWindow, "outside every reboot window, and none opens within 400 days")
	}
	return ending.Fail(ending.ErrOutsideWindow, "outside the reboot window: the next opens at %s", next.Format(time.RFC3339))
}

// checkHealth is the health gate: every rule of every service of the node holds, with every
// reboot in flight anywhere in the fleet counted as a failing instance.
func (p *Pipeline) checkHealth(ctx context.Context, gate string) error {
	v, err := p.locks().View(ctx)
	if err != nil {
		return err
	}
	return p.checkHealthIn(ctx, v, gate)
}

// checkHealthIn is the health gate with the reboots in flight as v has them.
func (p *Pipeline) checkHealthIn(ctx context.Context, v place.View, gate string) error {
	p.seen.sawView(v, p.Node)
	return place.HealthIn(ctx, p.Health, p.Logger, v, p.Node, gate)
}

// IntervalGate is the least time between two reboots of node, judged on its group's history at
// now for the request req: nil, or a "not now" error that knows when it opens. When req is the
// very request the last reboot was for (a reboot-required file not written since that reboot
// finished, or the same reboot-required command, whose answer carries no date, still saying
// so), the reboot did not clear it, and the error wraps ending.ErrSignalNotCleared too.
func IntervalGate(l history.Log, node string, interval time.Duration, now time.Time, req Request) error {
	if interval <= 0 {
		return nil
	}
	last, ok := place.LastReboot(l, node)
	if !ok {
		return nil
	}
	until := last.End.Add(interval)
	if !now.Before(until) {
		return nil
	}
	end, next := last.End.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)
	if signalNotCleared(last, req) {
		return &ending.Error{Gate: ending.ErrOutsideWindow, Err: ending.ErrSignalNotCleared, Name: intervalGate, Until: until, Msg: fmt.Sprintf(
			"the reboot signal did not clear after the reboot: %s still asks for one, as it did before this node's reboot that finished at %s; no reboot before %s (min reboot interval %s): look at what asks",
			req.Why, end, next, interval)}
	}
	return &ending.Error{Gate: ending.ErrOutsideWindow, Name: intervalGate, Until: until,
		Msg: fmt.Sprintf("min reboot interval: this node's last reboot finished at %s; the next may start at %s", end, next)}
}

// intervalGate names the min reboot interval's gate.
const intervalGate = "min reboot interval"

// signalNotCleared says whether req is the request the reboot last did was for.
func signalNotCleared(last history.Entry, req Request) bool {
	switch {
	case !req.Written.IsZero():
		// A file the reboot's end did not remove, or that the boot wrote again.
		return !req.Written.After(last.End)
	case req.Command:
		return req.Why == last.TriggeredBy
	}
	return false
}

// checkInterval is the least time between two reboots of this node. A request that the reboot
// did not clear is reported once (a warning, a notification and an entry in the group's
// history), however often it is seen until it clears or the interval has passed.
func (p *Pipeline) checkInterval(ctx context.Context) error {
	if p.MinRebootInterval <= 0 {
		return nil
	}
	if p.lastReboot != nil && !p.Clock.Now().Before(p.lastReboot.Add(p.MinRebootInterval)) {
		// This node's last reboot, as this process knows it, is long enough ago: a newer one
		// would have been this process's own (it records it) or would have restarted it.
		return nil
	}
	l, _, err := p.Store.History(ctx)
	if err != nil {
		return err
	}
	last, _ := place.LastReboot(l, p.Node)
	p.lastReboot = &last.End
	gerr := IntervalGate(l, p.Node, p.MinRebootInterval, p.Clock.Now(), p.request)
	if !errors.Is(gerr, ending.ErrSignalNotCleared) {
		return gerr
	}
	for _, e := range l.Entries {
		if e.Node == p.Node && e.Outcome == history.SignalNotCleared && e.End.After(last.End) {
			return gerr
		}
	}
	p.Logger.Warn("the reboot signal did not clear after the reboot: not rebooting again before the min reboot interval has passed", logkey.Gate, "min reboot interval", logkey.By, p.request.Why, logkey.LastReboot, last.End.UTC())
	if !p.DryRun {
		now := p.Clock.Now().UTC()
		p.record(ctx, history.Entry{Node: p.Node, Start: now, End: now, Outcome: history.SignalNotCleared, Detail: gerr.Error(), TriggeredBy: p.request.Why})
		p.tell(ctx, NotifySignalNotCleared, gerr.Error())
	}
	return gerr
}
