package daemon

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/watch"
)

// from is a batch with one event from each source named.
func from(sources ...watch.Source) []watch.Event {
	evs := make([]watch.Event, 0, len(sources))
	for _, s := range sources {
		evs = append(evs, watch.Event{Source: s})
	}
	return evs
}

// full is a batch of watch.MaxPending events from src: others may have been dropped.
func full(src watch.Source) []watch.Event {
	evs := make([]watch.Event, watch.MaxPending)
	for i := range evs {
		evs[i].Source = src
	}
	return evs
}

// The states a run leaves, as decide sees them.
var (
	started     = state{}
	idle        = state{idle: true}
	waitingTurn = state{waitingTurn: true, forLock: true, queued: true}
	forHealth   = state{health: true, inFlight: []string{"n7"}}
	// heldByN7: waiting for health, which only n7's reboot fails, with n9 in flight too.
	heldByN7 = state{health: true, inFlight: []string{"n7", "n9"}, heldBy: []string{"n7"}}
	// working: at the front of its queue with a place free, waiting for the group's cooldown.
	working      = state{working: true}
	forLockQueue = state{forLock: true, queued: true}
	// forLockOut waits for the lock, its entry in the queue not written.
	forLockOut = state{forLock: true}
	// notNow waits for neither health nor the lock (outside the window, say).
	notNow = state{}
)

const (
	lockEv, limitEv, holdersEv, claimsEv, pythonEv = watch.SourceLock, watch.SourceLimit, watch.SourceHolders, watch.SourceClaims, watch.SourcePython
	healthEv, turnEv, lookEv, tickEv, triggerEv    = watch.SourceHealth, watch.SourceTurn, watch.SourceLook, watch.SourceTick, watch.SourceTrigger
)

// TestDecide covers every way a batch of events is judged: what it skips, where a look at the
// lock is enough, and that everything else runs the pipeline.
func TestDecide(t *testing.T) {
	tests := []struct {
		name  string
		s     state
		evs   []watch.Event
		want  action
		sayer string // a part of the reason given
	}{
		{"no event", forLockQueue, nil, skip, ""},
		{"the start", started, from(watch.SourceStart), run, "evaluating"},

		// Waiting for the cooldown: its own write of the queue, or any change of the locks,
		// gives it nothing to do; a wake for a place, a trigger or a tick does.
		{"working: its own queue write", working, from(lockEv), skip, "cooldown"},
		{"working: every lock event", working, from(lockEv, limitEv, holdersEv, claimsEv, pythonEv), skip, "cooldown"},
		{"working: its turn", working, from(watch.SourceTurn), run, "evaluating"},
		{"working: the tick", working, from(lockEv, watch.SourceTick), run, "evaluating"},
		{"working: its recheck", working, from(watch.SourceDeadline), run, "evaluating"},

		// Idle, and only the locks or health changed.
		{"idle: the lock", idle, from(lockEv), skip, "idle"},
		{"idle: every lock event", idle, from(lockEv, limitEv, holdersEv, claimsEv, pythonEv), skip, "idle"},
		{"idle: health", idle, from(healthEv, healthEv), skip, "idle"},
		{"idle: the locks and health at once", idle, from(lockEv, healthEv), run, "evaluating"},
		{"idle: a trigger", idle, from(lockEv, triggerEv), run, "evaluating"},
		{"idle: the tick", idle, from(tickEv), run, "evaluating"},
		{"idle: a full batch may hide a trigger", idle, full(lockEv), run, "evaluating"},

		// Waiting for its turn, and only held watches spoke.
		{"turn: the lock, holders, Python, health, claims", waitingTurn, from(lockEv, holdersEv, pythonEv, healthEv, claimsEv), skip, "its turn"},
		{"turn: health", waitingTurn, from(healthEv), skip, "its turn"},
		{"turn: its turn key gives it a place", waitingTurn, from(turnEv), run, "evaluating"},
		{"turn: told to look", waitingTurn, from(lookEv), look, "looking at the lock alone"},
		{"turn: the limit (not held)", waitingTurn, from(limitEv), look, "looking at the lock alone"},
		{"held by n7: health", heldByN7, from(healthEv), look, "looking for one that ended"},
		{"held by n7: health and the holders", heldByN7, from(healthEv, holdersEv), look, "looking for one that ended"},
		{"held by n7: health and its request", heldByN7, from(healthEv, triggerEv), run, "evaluating"},
		{"held by n7: the tick", heldByN7, from(tickEv), run, "evaluating"},
		{"health, not held by reboots alone: health", forHealth, from(healthEv), run, "evaluating"},
		{"turn: the tick", waitingTurn, from(lockEv, tickEv), turnLook, "looking at the queue"},
		{"turn: the tick, and its request", waitingTurn, from(tickEv, triggerEv), run, "evaluating"},
		{"turn: a wait's end", waitingTurn, from(watch.SourceDeadline), turnLook, "looking at the queue"},

		// Only holders' events, and waiting for neither health nor the lock.
		{"not now: holders", notNow, from(holdersEv), skip, "holders"},
		{"not now: Python's lock", notNow, from(pythonEv, holdersEv), skip, "holders"},
		{"not now: the lock itself", notNow, from(lockEv), run, "evaluating"},
		{"not now: a full batch of holders", notNow, full(holdersEv), run, "evaluating"},

		// Waiting for health, and only the locks changed: the NoneLanded look.
		{"health: the lock", forHealth, from(lockEv), look, "reboot in flight"},
		{"health: holders", forHealth, from(holdersEv, pythonEv), look, "reboot in flight"},
		{"health: claims, limit", forHealth, from(claimsEv, limitEv), look, "reboot in flight"},
		{"health: health changed", forHealth, from(healthEv), run, "evaluating"},
		{"health: the lock and the tick", forHealth, from(lockEv, tickEv), run, "evaluating"},
		{"health: told to look", forHealth, from(lookEv), run, "evaluating"},

		// Waiting for the lock in the queue, and only the lock changed, or told to look.
		{"lock: the lock", forLockQueue, from(lockEv), look, "looking at the lock alone"},
		{"lock: holders, Python", forLockQueue, from(holdersEv, pythonEv), look, "looking at the lock alone"},
		{"lock: told to look", forLockQueue, from(lookEv, lookEv), look, "looking at the lock alone"},
		{"lock: the lock and told to look", forLockQueue, from(lockEv, lookEv), run, "evaluating"},
		{"lock: health", forLockQueue, from(healthEv), run, "evaluating"},
		{"lock: a full batch of the lock", forLockQueue, full(lockEv), run, "evaluating"},
		{"lock, not in the queue: the lock", forLockOut, from(lockEv), run, "evaluating"},
		{"lock, not in the queue: holders", forLockOut, from(holdersEv), run, "evaluating"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := decide(tt.s, tt.evs)
			if got != tt.want || !strings.Contains(why, tt.sayer) {
				t.Fatalf("decide = %s (%q), want %s (saying %q)", got, why, tt.want, tt.sayer)
			}
		})
	}
}

// TestAfterLook: a look for health skips the run while no reboot it counted in flight ended; a
// look at the lock runs once there is a place, and stands for the run otherwise.
func TestAfterLook(t *testing.T) {
	inFlight := func(nodes ...string) pipeline.Result { return pipeline.Result{Seen: pipeline.Seen{InFlight: nodes}} }
	held := fmt.Errorf("%w: n8", ending.ErrLockHeld)
	trouble := errors.New("consul unreachable")
	tests := []struct {
		name string
		s    state
		res  pipeline.Result
		err  error
		want action
	}{
		{"health: none landed", forHealth, inFlight("n7"), nil, skip},
		{"health: none landed, one more in flight", forHealth, inFlight("n7", "n9"), nil, skip},
		{"health: none landed, the look ended at a gate", forHealth, inFlight("n7"), held, skip},
		{"health: n7 landed", forHealth, inFlight("n9"), nil, run},
		{"health: every reboot landed", forHealth, inFlight(), nil, run},
		{"health: none counted before", state{health: true}, inFlight("n7"), nil, run},
		{"health: the look failed", forHealth, inFlight("n7"), trouble, run},
		{"health held by n7: another landed", heldByN7, inFlight("n7"), nil, skip},
		{"health held by n7: n7 landed", heldByN7, inFlight("n9"), nil, run},
		{"health held by n7: the look read nothing", heldByN7, pipeline.Result{}, nil, run},
		{"lock: a place", forLockQueue, pipeline.Result{}, nil, run},
		{"lock: held still", forLockQueue, pipeline.Result{}, held, keep},
		{"lock: the look failed", forLockQueue, pipeline.Result{}, trouble, keep},
		{"turn: a place", waitingTurn, pipeline.Result{}, nil, run},
		{"turn: held still", waitingTurn, pipeline.Result{}, held, keep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, why := afterLook(tt.s, tt.res, tt.err); got != tt.want {
				t.Fatalf("afterLook = %s (%q), want %s", got, why, tt.want)
			}
		})
	}
}

// TestAfterTurnLook: at its tick, a node waiting for its turn runs whole only where a wake lost
// could have been its, or where the look cannot say; the rest of the queue waits to be told.
func TestAfterTurnLook(t *testing.T) {
	look := func(st pipeline.Standing, front bool, holders ...string) pipeline.Result {
		rec := lock.Record{}
		for _, h := range holders {
			rec.Holders = append(rec.Holders, lock.Holder{Node: h})
		}
		return pipeline.Result{Seen: pipeline.Seen{Standing: st, Front: front, Lock: &rec}}
	}
	forRoom := state{waitingTurn: true, health: true, queued: true, groupLock: look(pipeline.QueuedForRoom, false, "n7", "n8").Seen.Lock}
	queued := fmt.Errorf("%w: %w", ending.ErrLockHeld, lock.ErrQueued)
	trouble := errors.New("consul unreachable")
	overdue := look(pipeline.QueuedReady, false, "n7")
	overdue.Seen.Overdue = true
	tests := []struct {
		name string
		s    state
		res  pipeline.Result
		err  error
		want action
	}{
		{"the look failed", waitingTurn, look(pipeline.QueuedReady, false), trouble, run},
		{"a holder past its deadline", waitingTurn, overdue, nil, run},
		{"out of the queue", waitingTurn, look(pipeline.NotQueued, false), queued, run},
		{"marked as having missed its turn", waitingTurn, look(pipeline.QueuedBlocked, false), queued, run},
		{"ready, at the front", waitingTurn, look(pipeline.QueuedReady, true), queued, run},
		{"ready, a place free for it", waitingTurn, look(pipeline.QueuedReady, false), nil, run},
		{"ready, nodes before it go first", waitingTurn, look(pipeline.QueuedReady, false), queued, skip},
		{"for room, at the front", forRoom, look(pipeline.QueuedForRoom, true, "n7", "n8"), nil, run},
		{"for room, as many in flight", forRoom, look(pipeline.QueuedForRoom, false, "n7", "n9"), nil, skip},
		{"for room, more in flight", forRoom, look(pipeline.QueuedForRoom, false, "n7", "n8", "n9"), nil, skip},
		{"for room, fewer in flight", forRoom, look(pipeline.QueuedForRoom, false, "n9"), nil, run},
		{"for room, none counted before", state{waitingTurn: true, health: true, queued: true}, look(pipeline.QueuedForRoom, false, "n7"), nil, run},
		{"for room, no place free", forRoom, look(pipeline.QueuedForRoom, false), queued, skip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, why := afterTurnLook(tt.s, tt.res, tt.err); got != tt.want {
				t.Fatalf("afterTurnLook = %s (%q), want %s", got, why, tt.want)
			}
		})
	}
}

// TestStateAfter: what a run's result leaves for the next decision.
func TestStateAfter(t *testing.T) {
	queued := pipeline.Result{Seen: pipeline.Seen{Queued: true}}
	full := fmt.Errorf("%w: %w", ending.ErrLockHeld, lock.ErrFull)
	yields := fmt.Errorf("%w: %w", ending.ErrLockHeld, &lock.YieldError{Claim: lock.Claim{Node: "ctl2"}})
	tests := []struct {
		name string
		res  pipeline.Result
		err  error
		turn bool
		want state
	}{
		{"nothing to do", pipeline.Result{Outcome: pipeline.NothingToDo}, nil, false, state{idle: true}},
		{"finished", pipeline.Result{Outcome: pipeline.Finished}, nil, false, state{}},
		{"trouble", pipeline.Result{}, errors.New("consul unreachable"), false, state{}},
		{"waiting for health", pipeline.Result{Seen: pipeline.Seen{InFlight: []string{"n7"}}}, fmt.Errorf("%w: web", ending.ErrUnhealthy), false, forHealth},
		{"waiting for health, held by n7", pipeline.Result{Seen: pipeline.Seen{InFlight: []string{"n7", "n9"}, HeldBy: []string{"n7"}}}, fmt.Errorf("%w: web", ending.ErrUnhealthy), false, heldByN7},
		{"held by n7, but ended elsewhere", pipeline.Result{Seen: pipeline.Seen{HeldBy: []string{"n7"}}}, fmt.Errorf("%w: n8", ending.ErrLockHeld), false, state{forLock: true}},
		{"waiting for its turn", queued, full, true, waitingTurn},
		{"waiting for its turn, an older daemon about", queued, full, false, forLockQueue},
		{"waiting for the lock, out of the queue", pipeline.Result{}, full, false, forLockOut},
		{"yielding", pipeline.Result{}, yields, false, state{forLock: true, yielding: true}},
		{"stopped", pipeline.Result{}, fmt.Errorf("%w: by ops", ending.ErrStopped), false, notNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stateAfter(tt.res, tt.err, tt.turn); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("stateAfter = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestNewPauses: the pauses a daemon starts with hold what the start's state holds.
func TestNewPauses(t *testing.T) {
	quiet, health, turn, claims := NewPauses("n1", 5*time.Minute)
	if quiet.Held() || health.Held() || health.Services().Held() || health.Service("web").Held() || !turn.Held() || !claims.Held() {
		t.Fatalf("new pauses hold quiet %v, health %v, turn %v, claims %v; want the turn key and the claims only",
			quiet.Held(), health.Held(), turn.Held(), claims.Held())
	}
}

// TestWatches: what each state holds (see Daemon.Quiet): the lock's watches and health while
// idle or waiting for its turn, the turn key unless it waits for it, the claims unless it
// yields; an idle node's health watches share the reads of each service as it evaluates (the
// set of its services asks once more, each service at its turn).
func TestWatches(t *testing.T) {
	const asks, held, shares = watch.HealthAsks, watch.HealthHeld, watch.HealthShares
	tests := []struct {
		name       string
		s          state
		evaluating bool
		want       holds
	}{
		{"the start", started, false, holds{quiet: false, health: asks, turn: true, claims: true}},
		{"idle", idle, false, holds{quiet: true, health: held, turn: true, claims: true}},
		{"idle, evaluating", idle, true, holds{quiet: true, health: shares, turn: true, claims: true}},
		{"waiting for its turn", waitingTurn, false, holds{quiet: true, health: held, turn: false, claims: true}},
		{"waiting for its turn, evaluating", waitingTurn, true, holds{quiet: true, health: held, turn: false, claims: true}},
		{"waiting for the lock", forLockQueue, false, holds{quiet: false, health: asks, turn: true, claims: true}},
		{"waiting for health", forHealth, true, holds{quiet: false, health: asks, turn: true, claims: true}},
		{"yielding", state{forLock: true, yielding: true}, false, holds{quiet: false, health: asks, turn: true, claims: false}},
		{"working towards its place", working, false, holds{quiet: false, health: asks, turn: false, claims: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := watches(tt.s, tt.evaluating); got != tt.want {
				t.Fatalf("watches = %+v, want %+v", got, tt.want)
			}
		})
	}
}
