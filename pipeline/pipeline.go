// Package pipeline is one reboot of one node: the gates it must pass, the lock it takes, the
// tasks it runs, the reboot, and the work that finishes it after the node is back. It consumes
// small interfaces (a store of keys and the lock record, a health source, a task runner, a
// rebooter, a clock) and knows nothing of how they are implemented.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/window"
)

// Flags are the keys that mean something by existing: the stop flags, a node's disabled mark,
// a node's reboot request.
type Flags interface {
	Stop(ctx context.Context) (place.Flag, error)
	// WaitStop returns when the stop flag is set (or ctx ends).
	WaitStop(ctx context.Context) (place.Flag, error)
	Disabled(ctx context.Context, node string) (place.Flag, error)
	// SetDisabled marks node disabled with reason, keeping a mark that is already there.
	SetDisabled(ctx context.Context, node, reason string) error
	Trigger(ctx context.Context, node string) (place.Flag, error)
	// RewriteTrigger writes node's reboot request with value if its ModifyIndex is still index,
	// and returns the ModifyIndex of that write (0, nothing written, when the request changed
	// or is gone).
	RewriteTrigger(ctx context.Context, node string, index uint64, value string) (uint64, error)
	// DeleteTrigger deletes node's reboot request if its ModifyIndex is still index.
	DeleteTrigger(ctx context.Context, node string, index uint64) (bool, error)
}

// Group is what the group keeps besides its lock: its stop flag as the pipeline sets it, and
// its history.
type Group interface {
	place.Group
	// AppendHistory records a reboot (or a failed one) and returns the group's history.
	AppendHistory(ctx context.Context, e history.Entry) (history.Log, error)
}

// Maintenance is the local node's maintenance mode.
type Maintenance interface {
	// StartMaintenance puts node into Consul maintenance with reason.
	StartMaintenance(ctx context.Context, node, reason string) error
	// EndMaintenance ends node's maintenance if rebootmgr started it.
	EndMaintenance(ctx context.Context, node string) error
}

// Store is everything the pipeline keeps in Consul.
type Store interface {
	Flags
	place.Locks
	Group
	Maintenance
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
	NotifyRebootFailed   = "reboot command failed"
	// NotifyNotRebooted: the reboot command ran and the node's boot id did not change.
	NotifyNotRebooted = "did not reboot"
	// NotifySignalNotCleared: what asked for a reboot still asks right after it (see
	// IntervalGate).
	NotifySignalNotCleared = "reboot signal did not clear"
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
	// Zone is the node's zone (node meta rebootmgr-zone; "" for none): a group whose limit is
	// bounded per zone counts its holders by zone.
	Zone string
	// Settle is how long to wait after the pre-boot tasks before checking again, or SettleAuto.
	Settle time.Duration
	// CheckTriggers: reboot only when a trigger file or the node's reboot_required key exists,
	// or a reboot-required command says so.
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
	// MinRebootInterval is the least time between the end of this node's last reboot and the
	// start of its next (0: none), so that a request a reboot does not clear cannot reboot the
	// node in a loop.
	MinRebootInterval time.Duration
	// Alerts is the alert source whose firing alerts hold the reboot back (nil: none).
	Alerts *gate.AlertSource
	// ClaimFor is how long a claim of room this node writes lasts unless judged again (see
	// lock.Claims): a daemon's, which looks again at every reboot that ends and at its tick,
	// claims for twice its tick. Zero: the run claims nothing (a one-off run, which does not
	// look again, must not hold up others).
	ClaimFor time.Duration
}

// Pipeline is one node's reboot run.
type Pipeline struct {
	Config
	Store    Store
	Health   place.Health
	Tasks    Tasks
	Rebooter Rebooter
	Clock    Clock
	// Sentinels are the reboot-required commands, asked (with CheckTriggers) when no file and
	// no key asks for a reboot.
	Sentinels []gate.Sentinel
	// BootID reads the machine's boot id.
	BootID func() (string, error)
	// Note is where the reboot command is noted before it runs (see RebootNote).
	Note RebootNote
	// Notifier is told of reboots, failed tasks and stopped groups (nobody, when nil).
	Notifier Notifier
	Logger   *slog.Logger
	// Sightings is this process's memory of the times other nodes wrote (see lock.Sightings):
	// one for a daemon, which lives on, nil for a one-off run.
	Sightings *lock.Sightings

	// seen is what the current run learnt so far; runs of one Pipeline never overlap.
	seen Seen
	// holding says that the current run must give its place back if it ends before the
	// reboot (see releasesOnError).
	holding bool
	// unrecorded is the disabled mark a failed task called for and that could not be written:
	// until it is, every run only tries to write it again.
	unrecorded string
	// queue is the group's queue as the current run read it first (see queueAfter).
	queue lock.Queue
	// told: the run was woken by its turn key: a place opened for it (see Told). unwritten: the
	// run's change of its entry in the queue could not be written (see changeEntry).
	told, unwritten bool
	// claim is this node's claim of room as the current run read it first (see claimAfter);
	// claimFailing says that the last change of it could not be written (said once).
	claim        *lock.Claim
	claimFailing bool
	// lastReboot is when this node's last reboot finished, as this process last read it from
	// the group's history or recorded it itself (nil: not read yet; zero: none).
	lastReboot *time.Time
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
	// InFlight are the nodes whose reboots the run last counted as failing (on the last View it
	// read), sorted; nil when it read none.
	InFlight []string
	// Queued says whether the node waits in its group's queue, not blocked, as the run left it:
	// it is then told when a place opens for it (see place.Woken), and needs to hear nothing else.
	Queued bool
	// Woke are the entries of the nodes the run's writes told that a place is theirs to look at,
	// as written then: each must answer within lock.AnswerWithin (see place.PassTurns).
	Woke []lock.QueueEntry
	// Standing is how the node stands in its group's queue on the View a look at the lock read
	// (see LookAtLock), and Front whether it is among the nodes a place opening goes to there
	// (lock.Queue.Front); Overdue, that a holder is past its deadline there. Runs leave them
	// unset.
	Standing Standing
	Front    bool
	Overdue  bool
	// Partial: the look read the queue's front alone (see LookAtQueue).
	Partial bool
	// HeldBy are the reboots in flight whose return would let every rule of the run's last
	// health check hold (health.Report.HeldBy): nil when that check passed, failed for more
	// than those, or none ran. A node waiting for health needs to look again only when one of
	// them ended.
	HeldBy []string
}

// Standing is how a node stands in its group's queue.
type Standing int

const (
	// NotQueued: it is not in the queue.
	NotQueued Standing = iota
	// QueuedReady: it waits, not blocked (lock.Queue.Ready).
	QueuedReady
	// QueuedForRoom: it waits for its group's reboots in flight (lock.ForRoom).
	QueuedForRoom
	// QueuedBlocked: its entry is blocked otherwise (its own gates, a turn it missed).
	QueuedBlocked
)

// standingIn is how node stands in q.
func standingIn(q lock.Queue, node string) Standing {
	i, ok := q.Place(node)
	switch {
	case !ok:
		return NotQueued
	case q.Entries[i].Blocked == "":
		return QueuedReady
	case q.Entries[i].Blocked == lock.ForRoom:
		return QueuedForRoom
	}
	return QueuedBlocked
}

// saw keeps the lock record the run last read or wrote.
func (s *Seen) saw(rec lock.Record) { s.Lock = &rec }

// sawView keeps what the run last read: its lock record, and the reboots in flight for node.
func (s *Seen) sawView(v place.View, node string) {
	s.saw(v.Lock)
	s.InFlight = slices.Sorted(maps.Keys(v.InFlight(node)))
	if s.InFlight == nil {
		s.InFlight = []string{}
	}
}

// NoneLanded says whether every node of before is still in after (both as Seen.InFlight): no
// reboot in flight ended between them, so no rule has more room in after than in before. False
// when either is unknown (nil).
func NoneLanded(before, after []string) bool {
	if before == nil || after == nil {
		return false
	}
	for _, n := range before {
		if !slices.Contains(after, n) {
			return false
		}
	}
	return true
}

// asked keeps what the run found requesting a reboot.
func (s *Seen) asked(why string) { s.Asked, s.Required = true, why }

// Run runs the pipeline once: it either starts a reboot, finishes one after the node came
// back, or ends at a gate with an error that says why.
func (p *Pipeline) Run(ctx context.Context) (res Result, err error) {
	var recheck time.Time
	p.seen, p.queue, p.claim, p.holding, p.told, p.unwritten = Seen{}, lock.Queue{}, nil, false, IsTold(ctx), false
	defer func() {
		if until := ending.Until(err); !until.IsZero() {
			recheck = earliest(recheck, until)
		} else if errors.Is(err, ending.ErrOutsideWindow) {
			recheck = earliest(recheck, p.Schedule.Next(p.Clock.Now()))
		}
		if errors.Is(err, errWorking) {
			// It keeps its turn while it waits (see keepTurn).
			recheck = earliest(recheck, p.Clock.Now().Add(lock.KeepEvery))
		}
		res.Recheck = recheck
		queued := p.queueAfter(ctx, res, err)
		if p.unwritten {
			// An answer to a wake (or a join) that could not be written is tried again well
			// within the time the node has to answer (see place.PassTurns).
			res.Recheck = earliest(res.Recheck, p.Clock.Now().Add(lock.AnswerWithin/2))
		}
		res.Seen = p.seen
		res.Seen.Queued = queued
		p.claimAfter(ctx, err)
	}()
	// Every error before the reboot gives a place this run holds back, but a stop-flag halt
	// (which leaves everything for the operator to see), a node held back with its place, a lost
	// place and a cancelled run (a shutdown, which must leave the lock as a crash would).
	defer func() {
		if err != nil && p.holding && p.releasesOnError(ctx, err) {
			p.abandon(ctx, err)
		}
	}()
	if err := p.recordDisabled(ctx); err != nil {
		return Result{}, err
	}
	s := p.snapshot(ctx)
	v, err := s.View.Get()
	if err != nil {
		return Result{}, err
	}
	p.queue = v.Queue
	if cl, ok := v.Claims.Of(p.Node); ok {
		p.claim = &cl
	}
	recheck = v.Lock.NextDeadline(s.Now, v.Sightings)
	return p.walk(ctx, s)
}
