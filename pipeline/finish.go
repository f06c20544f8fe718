package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// finish is the part after the reboot: the node holds the lock in phase finishing (a dry run's
// may still say rebooting), its reboot having happened (see rebooted).
// A stop flag does not hold it: a stop means that nothing further starts, and this reboot
// started already. Its node finishes it (health, post-boot tasks, health, maintenance off) and
// gives its place back, which nobody can take while the flag is set; left halted, the node
// would stay in maintenance holding its place until a resume, and the fleet could never be
// brought to a stop with no holder left (as an upgrade wants).
func (p *Pipeline) finish(ctx context.Context, h lock.Holder) (Result, error) {
	log := p.Logger
	if err := p.checkHealth(ctx, "health after reboot"); err != nil {
		return Result{}, err
	}
	if err := p.runTasks(ctx, PostBoot); err != nil {
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
	// The reboot is recorded before its place is given back: a run killed between the two
	// finishes it again and records it again, which the history holds once (see history.Log.Append);
	// recorded after, a kill between would lose it.
	start := h.RebootStarted
	if start.IsZero() {
		start = h.Since
	}
	end := p.Clock.Now().UTC()
	p.record(ctx, history.Entry{Node: p.Node, Start: start, End: end, Outcome: history.Finished, TriggeredBy: h.TriggeredBy})
	if err := p.release(ctx); err != nil {
		return Result{}, err
	}
	p.lastReboot = &end
	p.tell(ctx, NotifyRebootFinished, "")
	log.Info("reboot finished: lock released", logkey.Step, "done")
	return Result{Outcome: Finished, Message: "reboot finished"}, nil
}

// record appends to the group's history and trips the circuit breaker when the failures in its
// period reach its limit. A history that cannot be written is logged, never a reason to stop
// what the run is doing.
func (p *Pipeline) record(ctx context.Context, e history.Entry) {
	l, err := p.Store.AppendHistory(ctx, e)
	if err != nil {
		p.Logger.Error("could not record the reboot in the history", logkey.Err, err)
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
		p.Logger.Error("could not stop the group for the circuit breaker", logkey.Err, err)
		return
	}
	if set {
		p.tell(ctx, NotifyGroupStopped, reason)
	}
	p.Logger.Error("circuit breaker tripped: group stopped", logkey.Failures, len(failures))
}
