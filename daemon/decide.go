package daemon

import (
	"errors"
	"slices"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/watch"
)

// state is what the last run (or the look at the lock that stood for one) left: all the daemon
// knows when it judges what a batch of events calls for. The zero state is the start's: the
// daemon knows nothing yet, and runs at the first event.
type state struct {
	// idle: nothing asks this node to reboot, and it holds no place.
	idle bool
	// waitingTurn: it waits for its turn in its group's queue, and every daemon registered tells
	// the queue of a place it gives back (see Daemon.Silent): a place opens through its turn
	// key alone.
	waitingTurn bool
	// health: it waits for health (ending.ErrUnhealthy); forLock: for the lock
	// (ending.ErrLockHeld). A run's error wraps one gate at most.
	health, forLock bool
	// yielding: it leaves a place to a node with less room (lock.ErrYields; see Daemon.Claims).
	yielding bool
	// working: it works towards its place, waiting for the group's cooldown (see
	// pipeline.Working); it looks again when its wait set for it is over.
	working bool
	// queued: it waits in its group's queue (see pipeline.Seen.Queued).
	queued bool
	// inFlight are the reboots in flight it counted (see pipeline.NoneLanded); heldBy, those
	// whose return would let its health pass, where that is all that failed (see
	// pipeline.Seen.HeldBy).
	inFlight, heldBy []string
	// groupLock is its group's lock as it last read it (nil: it did not read it): its holders
	// are the group's reboots in flight then.
	groupLock *lock.Record
}

// stateAfter is the state a run that ended with res and err leaves; turn says that it waits for
// its turn in the queue, its watches of the lock held (see Daemon.Silent).
func stateAfter(res pipeline.Result, err error, turn bool) state {
	return state{
		idle:        err == nil && res.Outcome == pipeline.NothingToDo,
		waitingTurn: turn,
		health:      errors.Is(err, ending.ErrUnhealthy),
		forLock:     errors.Is(err, ending.ErrLockHeld),
		yielding:    errors.Is(err, lock.ErrYields),
		working:     pipeline.Working(err),
		queued:      res.Seen.Queued,
		inFlight:    res.Seen.InFlight,
		heldBy:      heldBy(res, err),
		groupLock:   res.Seen.Lock,
	}
}

// heldBy are the reboots in flight a run that ended with res and err at the health gate waits
// for (pipeline.Seen.HeldBy); nil for a run that ended elsewhere.
func heldBy(res pipeline.Result, err error) []string {
	if !errors.Is(err, ending.ErrUnhealthy) {
		return nil
	}
	return res.Seen.HeldBy
}

// action is what the daemon does with a batch of events.
type action int

const (
	// skip: nothing; the events cannot change what the last run found.
	skip action = iota
	// look: a look at the lock alone (pipeline.LookAtLock), whose result afterLook judges.
	look
	// run: a whole run of the pipeline.
	run
	// keep: the look at the lock stands for a run: its result is the node's.
	keep
	// turnLook: a look at the lock at a tick, for a node waiting for its turn, whose result
	// afterTurnLook judges.
	turnLook
)

func (a action) String() string {
	return [...]string{"skip", "look", "run", "keep", "turnLook"}[a]
}

// decide says what a batch of events calls for in state s, and why (for the log; "" for no
// event).
func decide(s state, evs []watch.Event) (action, string) {
	switch {
	case len(evs) == 0:
		return skip, "" // a wake whose events an evaluation took already
	case s.idle && (onlyLockEvents(evs) || onlyFrom(evs, watch.SourceHealth)):
		// Nothing asks this node to reboot, and it holds no place: another node's lock, limit,
		// queue or holders, or the health of its services, changed.
		return skip, "idle, and only the locks or health changed: not evaluating"
	case s.waitingTurn && slices.ContainsFunc(evs, isTimer) && onlyFrom(evs, watch.SourceTick, watch.SourceDeadline, watch.SourceLock, watch.SourceHolders, watch.SourcePython, watch.SourceHealth, watch.SourceClaims):
		// The tick stands in for a wake lost (a daemon that gave a place back and was gone
		// before it told anyone), and the wait its last run set for a turn before it to end
		// (or a holder's deadline) for what nothing announces: the queue alone says whether
		// either could be this node's chance.
		return turnLook, "waiting for its turn in the group's queue, at its tick or a wait's end: looking at the queue"
	case s.waitingTurn && onlyFrom(evs, watch.SourceLock, watch.SourceHolders, watch.SourcePython, watch.SourceHealth, watch.SourceClaims):
		// Held watches say once what changed since they were held: this node hears of a place
		// from its turn key.
		return skip, "waiting for its turn in the group's queue, and only the locks or health changed: not evaluating"
	case s.working && onlyLockEvents(evs):
		// Waiting for the group's cooldown, with its turn kept: a change of the locks (its own
		// write of the queue among them) moves no cooldown on; its recheck runs it.
		return skip, "working towards its place (the group's cooldown), and only the locks changed: not evaluating"
	case onlyHolderEvents(evs) && !s.health && !s.forLock:
		// Another group's holders, or the Python rebootmgr's lock, changed: that matters to a
		// node waiting for health (a reboot in flight counts as failing) or for the lock, not
		// to one with nothing to do.
		return skip, "only the fleet's holders or the Python rebootmgr's lock changed, and this node waits for neither health nor the lock: not evaluating"
	case s.health && s.heldBy != nil && onlyFrom(evs, watch.SourceHealth, watch.SourceLock, watch.SourceLimit, watch.SourceHolders, watch.SourceClaims, watch.SourcePython):
		// Its health fails only for reboots in flight, which fail whatever their checks say: a
		// change of health (their maintenance, their agent going down and back) leaves it
		// failing until one of them ends, which a look at the locks sees.
		return look, "waiting for health that only reboots in flight fail, and only health or the locks changed: looking for one that ended"
	case s.health && onlyLockEvents(evs):
		// A reboot taking a place, or moving on, leaves no rule more room; only one that ended
		// does. A look at the locks says whether one did.
		return look, "waiting for health, and only the locks changed: looking for a reboot in flight that ended"
	case s.forLock && s.queued && (onlyLockEvents(evs) || onlyFrom(evs, watch.SourceLook)):
		// Waiting for the lock in the queue, and only the lock changed (or this node was told to
		// look at it: a holder's deadline changed): the whole run is needed only once there is
		// a place. (A node whose entry could not be written runs whole, and joins then.)
		return look, "waiting for the lock, and only the lock changed: looking at the lock alone"
	}
	return run, "evaluating"
}

// afterLook says what a look at the lock that decide asked for in state s leaves to do, given
// what the look found: nothing (skip), a whole run (run), or nothing more, the look standing
// for the run (keep).
func afterLook(s state, res pipeline.Result, err error) (action, string) {
	if s.health {
		if (err == nil || ending.Sentinel(err) != nil) && !landed(s, res.Seen.InFlight) {
			return skip, "waiting for health, and of the reboots in flight it waits for, no reboot in flight ended: not evaluating"
		}
		return run, "waiting for health, and a reboot in flight ended (or the locks could not be read): evaluating"
	}
	if err == nil {
		return run, "a place is free in the lock: evaluating"
	}
	// Still held (the status follows the holder), or trouble: the look is the node's result.
	return keep, "the lock is still held, or could not be read: the look stands for a run"
}

// landed says whether a reboot in flight that a node waiting for health in state s waits for
// has ended, now that now are in flight: one of those its health was held by, where that is
// all that failed (a reboot anywhere else runs none of its services); else any it counted.
func landed(s state, now []string) bool {
	if s.heldBy != nil && now != nil {
		return slices.ContainsFunc(s.heldBy, func(n string) bool { return !slices.Contains(now, n) })
	}
	return !pipeline.NoneLanded(s.inFlight, now)
}

// afterTurnLook says what a look at the lock at a tick leaves to do for a node waiting for its
// turn in state s, given what the look found. The tick stands in for a wake that was lost: the
// node runs whole only where a hand-off would have told it, or where it could take a place now,
// and where the look cannot say (the lock unread, a holder past its deadline, its entry gone or
// blocked otherwise). Every other node of the queue waits on: a place opening tells it.
func afterTurnLook(s state, res pipeline.Result, err error) (action, string) {
	seen := res.Seen
	switch {
	case err != nil && ending.Sentinel(err) == nil:
		return run, "waiting for its turn, and its group's lock could not be read at its tick: evaluating"
	case seen.Overdue:
		return run, "waiting for its turn, and a holder is past its deadline: evaluating"
	case seen.Standing != pipeline.QueuedReady && seen.Standing != pipeline.QueuedForRoom:
		return run, "waiting for its turn, and its entry in the queue is gone or blocked: evaluating"
	case seen.Front:
		return run, "waiting for its turn, and at its tick it is among the first of the queue a place goes to: evaluating"
	case err != nil:
		return skip, "waiting for its turn, and at its tick no place is its: not evaluating"
	case seen.Standing == pipeline.QueuedReady:
		return run, "waiting for its turn, and at its tick a place is free for it: evaluating"
	case s.groupLock == nil || seen.Lock == nil || len(seen.Lock.Holders) < len(s.groupLock.Holders):
		return run, "waiting for its group's reboots in flight, and fewer are in flight than when it was held back: evaluating"
	}
	return skip, "waiting for its group's reboots in flight, no fewer are in flight, and a place opening tells the first of the queue: not evaluating"
}

// isTimer says whether ev is the daemon's tick, or the end of a wait its last run set.
func isTimer(ev watch.Event) bool {
	return ev.Source == watch.SourceTick || ev.Source == watch.SourceDeadline
}

// holds says which of the watches a node does not need as it is are held (see Daemon.Quiet),
// and what its health watches do.
type holds struct {
	quiet        bool
	health       watch.HealthMode
	turn, claims bool
}

// NewPauses are the pauses of a daemon's watches (see Daemon.Quiet) as its loop starts: held as
// the start's state holds them, so that no source hears before the loop what the loop would not.
// node and interval (its tick) say when an idle node takes its turn reading a service (see
// watch.Reads).
func NewPauses(node string, interval time.Duration) (quiet *watch.Pause, health *watch.HealthHold, turn, claims *watch.Pause) {
	h := watches(state{}, false)
	return watch.NewPause(h.quiet), watch.NewHealthHold(node, interval, h.health), watch.NewPause(h.turn), watch.NewPause(h.claims)
}

// watches is what the watches hold in state s (a node that works towards its place hears its
// turn key too: a wake asks it to answer, and only a run answers); evaluating, as the daemon runs
// the pipeline. An idle node's health watches share the reads of each service with the service's
// other idle daemons as it evaluates (watch.HealthShares): the one of its set of services asks
// once more, and each service's at this node's turn only, so that a large service is read by
// about two of its idle daemons a tick, and not by every one.
func watches(s state, evaluating bool) holds {
	quiet := s.idle || s.waitingTurn
	health := watch.HealthAsks
	switch {
	case evaluating && s.idle:
		health = watch.HealthShares
	case quiet:
		health = watch.HealthHeld
	}
	return holds{
		quiet:  quiet,
		health: health,
		turn:   !s.waitingTurn && !s.working,
		claims: !s.yielding,
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
