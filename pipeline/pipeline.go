// Package pipeline is one reboot of one node: the gates it must pass, the lock it takes, the
// tasks it runs, the reboot, and the work that finishes it after the node is back. It consumes
// small interfaces (a store of keys and the lock record, a health source, a task runner, a
// rebooter, a clock) and knows nothing of how they are implemented.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/window"
)

// Flag is a key that means something by existing: the stop flag, a node's disabled mark, a
// node's reboot request. Value is what it holds (a reason, often), Index its ModifyIndex.
type Flag struct {
	Set   bool
	Value string
	Index uint64
}

// Store holds the fleet's keys and the lock record.
type Store interface {
	Stop(ctx context.Context) (Flag, error)
	// WaitStop returns when the stop flag is set (or ctx ends).
	WaitStop(ctx context.Context) (Flag, error)
	Disabled(ctx context.Context, node string) (Flag, error)
	// SetDisabled marks node disabled with reason, keeping a mark that is already there.
	SetDisabled(ctx context.Context, node, reason string) error
	Trigger(ctx context.Context, node string) (Flag, error)
	// DeleteTrigger deletes node's reboot request if its ModifyIndex is still index.
	DeleteTrigger(ctx context.Context, node string, index uint64) (bool, error)
	// Lock reads the lock record and its index (0: no record).
	Lock(ctx context.Context) (lock.Record, uint64, error)
	// View reads the stop flags, the group's lock record and limit, the fleet's holders and
	// the Python rebootmgr's keys at one moment.
	View(ctx context.Context) (View, error)
	// Commit writes ch if nothing v holds changed since it was read; false (nothing written)
	// if something did.
	Commit(ctx context.Context, v View, ch Change) (bool, error)
	// StopGroup sets the group's stop flag with reason, keeping one already set; it reports
	// whether it set it.
	StopGroup(ctx context.Context, reason string) (bool, error)
	// History reads the group's history.
	History(ctx context.Context) (history.Log, uint64, error)
	// AppendHistory records a reboot (or a failed one) and returns the group's history.
	AppendHistory(ctx context.Context, e history.Entry) (history.Log, error)
	// StartMaintenance puts node into Consul maintenance with reason.
	StartMaintenance(ctx context.Context, node, reason string) error
	// EndMaintenance ends node's maintenance if rebootmgr started it.
	EndMaintenance(ctx context.Context, node string) error
}

// Health judges the services a node's reboot depends on.
type Health interface {
	// Check judges node's services; every node in down counts as a failing instance (the
	// value says why), whatever its checks say.
	Check(ctx context.Context, node string, down map[string]string) (health.Report, error)
}

// Task phases.
const (
	PreBoot  = "pre"
	PostBoot = "post"
)

// Tasks runs the operator's pre- and post-boot tasks.
type Tasks interface {
	// Validate checks the tasks of both phases without running any.
	Validate() error
	// Run runs the tasks of phase in order; the first failure ends it.
	Run(ctx context.Context, phase string, dryRun bool) error
}

// Notifier tells the outside world what happened; it never fails the run.
type Notifier interface {
	Tell(ctx context.Context, kind, reason string)
}

// The kinds of notification.
const (
	NotifyRebootStarted  = "reboot started"
	NotifyRebootFinished = "reboot finished"
	NotifyTaskFailed     = "task failed"
	NotifyGroupStopped   = "group stopped"
)

// Rebooter reboots the machine.
type Rebooter interface {
	Reboot(ctx context.Context) error
}

// Clock is time, injected so that waits are driven by tests.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the machine's clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// After waits for d.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SettleAuto asks the pipeline to wait, after the pre-boot tasks, as long as the considered
// checks need to run again (at most MaxSettle).
const SettleAuto time.Duration = -1

// MaxSettle bounds the automatic settle time.
const MaxSettle = 3 * time.Minute

// Config is what a run is asked to do.
type Config struct {
	Node string
	// Settle is how long to wait after the pre-boot tasks before checking again, or SettleAuto.
	Settle time.Duration
	// CheckTriggers: reboot only when a trigger file or the node's reboot_required key exists.
	CheckTriggers bool
	TriggerFiles  []string
	// DryRun reads and runs the tasks in dry-run mode, but writes nothing and never reboots.
	DryRun bool
	// Deadline is how long a node may take from the start of its reboot to the end of its
	// post-boot part; 0 for none.
	Deadline time.Duration
	// Schedule says when a reboot may start (always, when empty). The post-boot part is never
	// held back by it.
	Schedule window.Schedule
	// Breaker stops the group after too many failed reboots in a period (off when zero).
	Breaker history.Breaker
	// Cooldown is the least time between the end of a reboot in the group and the start of
	// the next (0: none).
	Cooldown time.Duration
	// StayGreen is how long the health checks must be seen passing, without a break, before
	// the node takes the lock (0: once is enough).
	StayGreen time.Duration
}

// Pipeline is one node's reboot run.
type Pipeline struct {
	Config
	Store    Store
	Health   Health
	Tasks    Tasks
	Rebooter Rebooter
	Clock    Clock
	// BootID reads the machine's boot id.
	BootID func() (string, error)
	// Notifier is told of reboots, failed tasks and stopped groups (nobody, when nil).
	Notifier Notifier
	Logger   *slog.Logger

	// seen is what the current run learnt so far; runs of one Pipeline never overlap.
	seen Seen
	// unrecorded is the disabled mark a failed task called for and that could not be written:
	// until it is, every run only tries to write it again.
	unrecorded string
}

func (p *Pipeline) tell(ctx context.Context, kind, reason string) {
	if p.Notifier != nil && !p.DryRun {
		p.Notifier.Tell(ctx, kind, reason)
	}
}

// Outcome is how a run that did not fail ended.
type Outcome int

// The outcomes of a successful run.
const (
	NothingToDo Outcome = iota
	RebootStarted
	Finished
	DryRunPassed
)

// String names the outcome: "nothing to do", "reboot started", "finished", "dry run passed".
func (o Outcome) String() string {
	switch o {
	case RebootStarted:
		return "reboot started"
	case Finished:
		return "finished"
	case DryRunPassed:
		return "dry run passed"
	}
	return "nothing to do"
}

// Result is a run's outcome, with one line for the operator.
type Result struct {
	Outcome Outcome
	Message string
	// Recheck is when a lock holder's deadline passes (zero when none is pending), set whether
	// the run failed or not: a daemon looks again then.
	Recheck time.Time
	// Seen is what the run learnt of the node on its way, whether it failed or not.
	Seen Seen
}

// Seen is what a run learnt of its node and group, for metrics and status: a part the run did
// not reach is left unknown.
type Seen struct {
	// Lock is the group's reboot lock as the run last read or wrote it (nil: not read).
	Lock *lock.Record
	// Asked says whether the run looked for a reboot request; Required is known only then.
	Asked bool
	// Required names what requests the reboot ("" when nothing does).
	Required string
}

// saw keeps the lock record the run last read or wrote.
func (s *Seen) saw(rec lock.Record) { s.Lock = &rec }

// asked keeps what the run found requesting a reboot.
func (s *Seen) asked(why string) { s.Asked, s.Required = true, why }

// lockAttempts bounds the check-and-set retries of one lock change.
const lockAttempts = 20

// Run runs the pipeline once: it either starts a reboot, finishes one after the node came
// back, or ends at a gate with an error that says why.
func (p *Pipeline) Run(ctx context.Context) (res Result, err error) {
	log := p.Logger
	var recheck time.Time
	p.seen = Seen{}
	defer func() {
		var nb *notBeforeError
		switch {
		case errors.As(err, &nb):
			recheck = earliest(recheck, nb.until)
		case errors.Is(err, ErrOutsideWindow):
			recheck = earliest(recheck, p.Schedule.Next(p.Clock.Now()))
		}
		res.Recheck = recheck
		res.Seen = p.seen
	}()
	if err := p.recordDisabled(ctx); err != nil {
		return Result{}, err
	}
	v, err := p.Store.View(ctx)
	if err != nil {
		return Result{}, err
	}
	if v.Stop.Set {
		return Result{}, stopError(v.Stop)
	}
	rec := v.Lock
	p.seen.saw(rec)
	now := p.Clock.Now()
	recheck = rec.NextDeadline(now)
	if err := p.stopOverdue(ctx, rec, now); err != nil {
		return Result{}, err
	}
	held := false
	why := "an operator's rebootmgr reboot"
	if h, ok := rec.Holder(p.Node); ok {
		switch h.Phase {
		case lock.Rebooting, lock.Finishing:
			log.Info("this node holds the reboot lock: finishing the reboot", "phase", h.Phase, "since", h.Since)
			return p.finish(ctx, h)
		default:
			log.Info("this node holds the reboot lock from a run that did not reboot: starting over from the gates", "phase", h.Phase, "since", h.Since)
			held = true
		}
		p.seen.asked("the reboot lock it holds")
	}
	if !held && p.CheckTriggers {
		why, err = p.triggered(ctx)
		if err != nil {
			return Result{}, err
		}
		p.seen.asked(why)
		if why == "" {
			log.Info("no reboot required", "gate", "trigger")
			return Result{Outcome: NothingToDo, Message: "no reboot required"}, nil
		}
		log.Info("reboot required", "gate", "trigger", "by", why)
	}
	return p.prepare(ctx, held, why)
}

// prepare runs the gates, takes the lock, runs the pre-boot tasks, settles, checks again
// and reboots. Every error before the reboot releases the lock, but a stop-flag halt (which
// leaves everything for the operator to see), a lost lock and a cancelled run (a shutdown,
// which must leave the lock as a crash would).
func (p *Pipeline) prepare(ctx context.Context, held bool, why string) (res Result, err error) {
	log := p.Logger
	if p.DryRun {
		// A dry run writes nothing: a lock this node already holds is left as it is.
		held = false
	}
	defer func() {
		if err == nil || !held || !p.releasesOnError(ctx, err) {
			return
		}
		p.abandon(ctx, err)
	}()

	if err := p.checkDisabled(ctx); err != nil {
		return Result{}, err
	}
	if err := p.checkWindow(); err != nil {
		return Result{}, err
	}
	if err := p.checkHealth(ctx, "health, counting every reboot in flight"); err != nil {
		return Result{}, err
	}
	if !held {
		if err := p.stayGreen(ctx); err != nil {
			return Result{}, err
		}
	}
	if err := p.Tasks.Validate(); err != nil {
		return Result{}, err
	}
	if !held {
		if err := p.checkCooldown(ctx); err != nil {
			return Result{}, err
		}
	}
	if p.DryRun {
		if err := p.checkLockFree(ctx); err != nil {
			return Result{}, err
		}
	} else {
		if err := p.acquire(ctx, why); err != nil {
			return Result{}, err
		}
		held = true
	}

	if err := p.runTasks(ctx, PreBoot); err != nil {
		return Result{}, err
	}

	if err := p.settle(ctx); err != nil {
		return Result{}, err
	}
	if err := p.checkStop(ctx); err != nil {
		return Result{}, err
	}
	if err := p.checkDisabled(ctx); err != nil {
		return Result{}, err
	}
	if !p.DryRun {
		if _, err := p.holder(ctx); err != nil {
			held = false
			return Result{}, err
		}
	}
	if p.CheckTriggers {
		why, err := p.triggered(ctx)
		if err != nil {
			return Result{}, err
		}
		p.seen.asked(why)
		if why == "" {
			log.Info("reboot request withdrawn while preparing: not rebooting", "gate", "trigger")
			if held {
				p.abandon(ctx, nil)
				held = false
			}
			return Result{Outcome: NothingToDo, Message: "reboot request withdrawn: not rebooting"}, nil
		}
	}
	if err := p.checkWindow(); err != nil {
		return Result{}, err
	}
	if err := p.checkHealth(ctx, "health after settle, counting every reboot in flight"); err != nil {
		return Result{}, err
	}
	if p.DryRun {
		log.Info("dry run: every gate passed; would reboot now")
		return Result{Outcome: DryRunPassed, Message: "dry run: every gate passed, would reboot"}, nil
	}

	if err := p.checkStop(ctx); err != nil {
		return Result{}, err
	}
	if err := p.Store.StartMaintenance(ctx, p.Node, maintenanceReason(p.Node)); err != nil {
		return Result{}, err
	}
	log.Info("node in maintenance", "step", "maintenance")
	bootID, err := p.BootID()
	if err != nil {
		return Result{}, err
	}
	trigger, err := p.Store.Trigger(ctx, p.Node)
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
	if err := p.beginReboot(ctx, func(h lock.Holder) lock.Holder {
		h.Phase = lock.Rebooting
		h.BootID = bootID
		h.RebootStarted = now
		h.TriggerIndex = trigger.Index
		if p.Deadline > 0 {
			h.Deadline = now.Add(p.Deadline)
		}
		return h
	}); err != nil {
		if errors.Is(err, ErrLockLost) {
			held = false
		}
		if errors.Is(err, ErrStopped) {
			log.Warn("stop flag set after the reboot was announced: not rebooting", "gate", "stop")
		}
		return Result{}, err
	}
	// From here on the lock stays: the node is going down, or the reboot command failed and the
	// next run must see that it did not reboot (exit 103) rather than try again.
	held = false
	log.Info("running the reboot command", "step", "reboot", "boot_id", bootID)
	if err := p.Rebooter.Reboot(ctx); err != nil {
		return Result{}, fmt.Errorf("reboot command failed (the lock stays in phase rebooting; the next run reports that the node did not reboot): %w", err)
	}
	return Result{Outcome: RebootStarted, Message: "reboot started"}, nil
}

// finish is the part after the reboot: the node holds the lock in phase rebooting or finishing.
func (p *Pipeline) finish(ctx context.Context, h lock.Holder) (Result, error) {
	log := p.Logger
	if h.Phase == lock.Rebooting {
		bootID, err := p.BootID()
		if err != nil {
			return Result{}, err
		}
		if bootID == h.BootID {
			return Result{}, gateFail(ErrNotRebooted, "the reboot lock says %s is rebooting since %s, but the boot id %s did not change: the reboot did not happen (check the reboot command; the lock stays until an operator unlocks it)",
				p.Node, h.RebootStarted.Format(time.RFC3339), bootID)
		}
		if !p.DryRun {
			var err error
			if h, err = p.updateHolder(ctx, func(h lock.Holder) lock.Holder { h.Phase = lock.Finishing; return h }); err != nil {
				return Result{}, err
			}
		}
		log.Info("node rebooted", "step", "finishing", "boot_id", bootID)
	}
	if err := p.checkStop(ctx); err != nil {
		return Result{}, err
	}
	if err := p.checkHealth(ctx, "health after reboot"); err != nil {
		return Result{}, err
	}
	if err := p.checkStop(ctx); err != nil {
		return Result{}, err
	}
	if err := p.runTasks(ctx, PostBoot); err != nil {
		return Result{}, err
	}
	if err := p.checkStop(ctx); err != nil {
		return Result{}, err
	}
	if err := p.checkHealth(ctx, "health after post-boot tasks"); err != nil {
		return Result{}, err
	}
	if p.DryRun {
		return Result{Outcome: DryRunPassed, Message: "dry run: the node is healthy after its reboot; would release the lock"}, nil
	}
	if err := p.Store.EndMaintenance(ctx, p.Node); err != nil {
		return Result{}, err
	}
	if h.TriggerIndex != 0 {
		deleted, err := p.Store.DeleteTrigger(ctx, p.Node, h.TriggerIndex)
		if err != nil {
			return Result{}, err
		}
		if !deleted {
			log.Info("reboot_required key changed after the reboot started: kept as a new request")
		}
	}
	if err := p.removeTriggerFiles(h.RebootStarted); err != nil {
		return Result{}, err
	}
	if err := p.release(ctx); err != nil {
		return Result{}, err
	}
	start := h.RebootStarted
	if start.IsZero() {
		start = h.Since
	}
	p.record(ctx, history.Entry{Node: p.Node, Start: start, End: p.Clock.Now().UTC(), Outcome: history.Finished, TriggeredBy: h.TriggeredBy})
	p.tell(ctx, NotifyRebootFinished, "")
	log.Info("reboot finished: lock released", "step", "done")
	return Result{Outcome: Finished, Message: "reboot finished"}, nil
}

// releasesOnError says whether an error before the reboot gives the lock back.
func (p *Pipeline) releasesOnError(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, ErrStopped) && !errors.Is(err, ErrLockLost) && !errors.Is(err, errWaitInPlace)
}

// abandon gives the lock back after a run that will not reboot, and ends the maintenance
// this or an earlier run may have started.
func (p *Pipeline) abandon(ctx context.Context, cause error) {
	if err := p.Store.EndMaintenance(ctx, p.Node); err != nil {
		p.Logger.Error("could not end maintenance", "err", err)
	}
	if err := p.release(ctx); err != nil {
		p.Logger.Error("could not release the reboot lock", "err", err)
		return
	}
	if cause != nil {
		p.Logger.Info("reboot lock released", "reason", cause.Error())
	}
}

// stopOverdue stops the group when a holder is past its deadline: the lock stays, nothing else
// moves until an operator has looked. No time ever releases a lock by itself.
func (p *Pipeline) stopOverdue(ctx context.Context, rec lock.Record, now time.Time) error {
	for _, h := range rec.Overdue(now) {
		reason := fmt.Sprintf("%s did not finish its reboot by its deadline %s (phase %s since %s); its lock is kept: look at %s, then rebootmgr unlock or resume",
			h.Node, h.Deadline.UTC().Format(time.RFC3339), h.Phase, h.Updated.UTC().Format(time.RFC3339), h.Node)
		p.Logger.Error("reboot deadline passed: stopping the group", "holder", h.Node, "deadline", h.Deadline)
		if p.DryRun {
			continue
		}
		set, err := p.Store.StopGroup(ctx, reason+" (rebootmgr on "+p.Node+", "+now.UTC().Format(time.RFC3339)+")")
		if err != nil {
			return err
		}
		if set {
			p.record(ctx, history.Entry{Node: h.Node, Start: h.RebootStarted, End: now.UTC(), Outcome: history.DeadlinePassed, TriggeredBy: h.TriggeredBy})
			p.tell(ctx, NotifyGroupStopped, reason)
		}
	}
	return nil
}

// record appends to the group's history and trips the circuit breaker when the failures in its
// period reach its limit. A history that cannot be written is logged, never a reason to stop
// what the run is doing.
func (p *Pipeline) record(ctx context.Context, e history.Entry) {
	l, err := p.Store.AppendHistory(ctx, e)
	if err != nil {
		p.Logger.Error("could not record the reboot in the history", "err", err)
		return
	}
	failures, trips := p.Breaker.Trips(l, p.Clock.Now())
	if !trips || !e.Failed() {
		return
	}
	nodes := make([]string, len(failures))
	for i, f := range failures {
		nodes[i] = f.Node + " (" + f.Outcome + ")"
	}
	reason := fmt.Sprintf("circuit breaker: %d failed reboots within %s: %s; look, then rebootmgr resume", len(failures), p.Breaker.Period, strings.Join(nodes, ", "))
	set, err := p.Store.StopGroup(ctx, reason)
	if err != nil {
		p.Logger.Error("could not stop the group for the circuit breaker", "err", err)
		return
	}
	if set {
		p.tell(ctx, NotifyGroupStopped, reason)
	}
	p.Logger.Error("circuit breaker tripped: group stopped", "failures", len(failures))
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
	return gateFail(ErrStopped, "stop flag is set (%s): halted, nothing further is started", oneLine(f.Value))
}

func (p *Pipeline) checkDisabled(ctx context.Context) error {
	f, err := p.Store.Disabled(ctx, p.Node)
	if err != nil {
		return err
	}
	if f.Set {
		reason := oneLine(f.Value)
		if reason == "" {
			reason = "no reason given"
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
	p.Logger.Info("health must stay green before the lock is taken", "gate", "stay green", "for", p.StayGreen)
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
	var last time.Time
	for _, e := range l.Entries {
		if e.Outcome == history.Finished && e.End.After(last) {
			last = e.End
		}
	}
	until := last.Add(p.Cooldown)
	if last.IsZero() || !p.Clock.Now().Before(until) {
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
	now := p.Clock.Now()
	if p.Schedule.Open(now) {
		return nil
	}
	next := p.Schedule.Next(now)
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
	rep, err := p.Health.Check(ctx, p.Node, v.InFlight(p.Node))
	if err != nil {
		return err
	}
	if !rep.OK() {
		return gateFail(ErrUnhealthy, "%s: %s", gate, rep.Reason())
	}
	p.Logger.Info("health checks pass", "gate", gate, "services", len(rep.Services))
	return nil
}

func (p *Pipeline) settleTime(ctx context.Context) (time.Duration, error) {
	if p.Settle != SettleAuto {
		return p.Settle, nil
	}
	rep, err := p.Health.Check(ctx, p.Node, nil)
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
		p.Logger.Info("dry run: would settle", "step", "settle", "duration", d)
		return nil
	}
	if d <= 0 {
		return nil
	}
	p.Logger.Info("settling: waiting for the checks to run again", "step", "settle", "duration", d)
	return p.whileNotStopped(ctx, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-p.Clock.After(d):
			return nil
		}
	})
}

func (p *Pipeline) runTasks(ctx context.Context, phase string) error {
	err := p.whileNotStopped(ctx, func(ctx context.Context) error {
		return p.Tasks.Run(ctx, phase, p.DryRun)
	})
	if err == nil || errors.Is(err, ErrStopped) || ctx.Err() != nil {
		return err
	}
	reason := phaseName(phase) + " " + err.Error()
	if !p.DryRun {
		now := p.Clock.Now().UTC()
		mark := fmt.Sprintf("%s (rebootmgr, %s)", reason, now.Format(time.RFC3339))
		p.unrecorded = mark
		if derr := p.recordDisabled(ctx); derr != nil {
			p.Logger.Error("could not mark the node disabled: halted until it can", "err", derr)
		} else {
			p.Logger.Warn("node marked disabled: an operator must look and clear the mark", "reason", reason)
		}
		start := now
		if h, herr := p.holder(ctx); herr == nil {
			start = h.Since
		}
		p.record(ctx, history.Entry{Node: p.Node, Start: start, End: now, Outcome: history.TaskFailed, Detail: reason})
		p.tell(ctx, NotifyTaskFailed, reason+"; the node is disabled")
	}
	return gateWrap(ErrTaskFailed, err, "%s tasks", phaseName(phase))
}

// recordDisabled writes the disabled mark a failed task called for, if one is still unwritten.
// A mark that cannot be written halts the node: nothing else runs until it is.
func (p *Pipeline) recordDisabled(ctx context.Context) error {
	if p.unrecorded == "" {
		return nil
	}
	if err := p.Store.SetDisabled(ctx, p.Node, p.unrecorded); err != nil {
		return gateWrap(ErrDisabled, err, "a task failed and this node must be disabled (%s), but the mark cannot be written: halted, nothing runs until it can be", oneLine(p.unrecorded))
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

// whileNotStopped runs fn with a context that ends, with ErrStopped as its cause, as soon as
// the stop flag appears.
func (p *Pipeline) whileNotStopped(ctx context.Context, fn func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := p.Store.WaitStop(wctx)
		if err == nil && f.Set {
			p.Logger.Warn("stop flag appeared: halting", "value", oneLine(f.Value))
			cancel(stopError(f))
		}
	}()
	err := fn(wctx)
	cancel(nil)
	<-done
	if cause := context.Cause(wctx); errors.Is(cause, ErrStopped) {
		return cause
	}
	return err
}

// triggered names what requests a reboot of this node ("" when nothing does).
func (p *Pipeline) triggered(ctx context.Context) (string, error) {
	for _, path := range p.TriggerFiles {
		_, err := os.Stat(path)
		if err == nil {
			return "file " + path, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("reboot-required file: %w", err)
		}
	}
	f, err := p.Store.Trigger(ctx, p.Node)
	if err != nil {
		return "", err
	}
	if f.Set {
		if v := oneLine(f.Value); v != "" {
			return "key reboot_required: " + v, nil
		}
		return "key reboot_required", nil
	}
	return "", nil
}

// removeTriggerFiles removes the reboot-required files that asked for the reboot just done;
// a file written after the reboot started is a new request and stays.
func (p *Pipeline) removeTriggerFiles(started time.Time) error {
	for _, path := range p.TriggerFiles {
		fi, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reboot-required file: %w", err)
		}
		if !started.IsZero() && fi.ModTime().After(started) {
			p.Logger.Info("reboot-required file written after the reboot started: kept as a new request", "file", path)
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove reboot-required file: %w", err)
		}
	}
	return nil
}

func maintenanceReason(node string) string {
	return "rebootmgr: rebooting " + node
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
