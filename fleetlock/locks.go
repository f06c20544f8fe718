// Package fleetlock serves the FleetLock protocol (the reboot lock Zincati and Flatcar's tools ask
// before they reboot a host: POST /v1/pre-reboot and /v1/steady-state) on rebootmgr's own lock:
// the same lock records, groups, limits, stop flags, fleet's holders and history as the daemons,
// a host holding a place under its FleetLock id as a node does under its name. A place is granted
// by the pipeline's own rules (place.AcquireIn) and, with an alert source, the daemons' alerts
// gate, judged on one consistent read and written with check-and-set against it, so several
// servers and the daemons may hand out places at once.
package fleetlock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// TriggeredBy is what a FleetLock holder's entry in the lock says asked for its reboot.
const TriggeredBy = lock.FleetLockTriggeredBy

// MaxHostID bounds the id of a host that asks for a place: the longest node name Consul serves
// in DNS (a host is judged by the Consul node of its id); Zincati's is 32 characters. With
// MaxQueue, it bounds what requests can add to a group's queue.
const MaxHostID = 63

// DefaultMaxQueue is MaxQueue's default, and MaxQueueBound the most it may be: a queue of
// that many entries of MaxHostID characters is some 150 kB as a transaction carries it
// (base64), well within the 512 kB Consul takes, beside the group's lock and the fleet's
// holders.
const (
	DefaultMaxQueue = 256
	MaxQueueBound   = 1000
)

// Locks hands out places in rebootmgr's locks to FleetLock hosts.
type Locks struct {
	Client *api.Client
	Keys   store.Keys
	// PythonMarkers: the Python rebootmgr's markers are kept up to date with every change, as
	// the daemons' --python-markers does (see store.Consul).
	PythonMarkers bool
	// Deadline is how long a host may hold its place from its pre-reboot to its steady-state
	// (0: no deadline). A holder past it stops its group when a daemon of the group reads the
	// lock, as a daemon's own holder does.
	Deadline time.Duration
	// MinRebootInterval is the least time between the end of a host's reboot (its steady-state)
	// and the grant of its next (0: none): a host whose update loops is not rebooted in a loop.
	MinRebootInterval time.Duration
	// MaxQueue is how many entries a group's queue may hold for a host refused for want of
	// room to join it (DefaultMaxQueue when 0): no flood of ids grows the queue, which every
	// change of the group's lock writes, beyond what a transaction takes.
	MaxQueue int
	// By says who stops a group for a holder past its deadline ("rebootmgr fleetlock on HOST").
	By     string
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Sightings judges the times other nodes wrote in the records (see lock.Sightings): the
	// server's memory of them, as a daemon's.
	Sightings *lock.Sightings
	// Alerts is the alert source whose firing alerts hold every host back, as they hold the
	// daemons' nodes (nil: none; see alertsHold).
	Alerts *gate.AlertSource
	// HealthInOrder reads a host's services one after the other (see store.Health.InOrder), as
	// a simulation that runs one request at a time needs; concurrently otherwise.
	HealthInOrder bool

	// turns is what the server does between requests (see Run).
	turnsOnce sync.Once
	turns     *turns
}

// now is the server's clock, monotonic reading and all: a wall clock's jump moves no deadline.
func (l *Locks) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// store is the store of group's lock.
func (l *Locks) store(group string) *store.Consul {
	return &store.Consul{Client: l.Client, Keys: l.Keys, Group: group, PythonMarkers: l.PythonMarkers, Logger: l.Logger, Now: l.Now}
}

// locks are st's locks, their Views judged by the server's sightings.
func (l *Locks) locks(st *store.Consul) place.Locks { return place.Sighted(st, l.Sightings) }

// ours says whether a holder's place was taken by a FleetLock request. A place a node of the
// same name took through rebootmgr's own pipeline is neither granted again nor given back here:
// that node finishes its reboot itself.
func ours(h lock.Holder) bool { return h.FleetLock() }

// errHolds ends a change that has nothing to write: the host holds its place already.
var errHolds = errors.New("holds its place already")

// errNotHolder ends a change that has nothing to write: the host holds no place to give back.
var errNotHolder = errors.New("holds no place")

// PreReboot gives host a place in group's lock, in phase rebooting: it counts as a reboot in
// flight for every node from then on. A host that holds its place already keeps it (nothing is
// written), unless a stop flag is set. It returns a gate error of package pipeline (or a
// *Refusal) when the host may not reboot now.
func (l *Locks) PreReboot(ctx context.Context, host, group string) error {
	st := l.store(group)
	now := l.now()
	at := now.UTC()
	h := lock.Holder{Node: host, Phase: lock.Rebooting, Since: at, Updated: at, RebootStarted: at, TriggeredBy: TriggeredBy}
	if l.Deadline > 0 {
		h.Deadline = at.Add(l.Deadline)
	}
	log := l.Logger.With(logkey.Node, host, logkey.Group, group)
	if err := l.mayAsk(ctx, st, host, group); err != nil {
		return err
	}
	v, err := l.locks(st).View(ctx)
	if err != nil {
		return err
	}
	if err := l.stopOverdue(ctx, st, log, v); err != nil {
		return err
	}
	if _, holds := v.Lock.Holder(host); !holds {
		if err := l.mayTake(ctx, st, v, host, now); err != nil {
			return err
		}
		// A stop flag comes first, as in the gates' order: AcquireIn refuses it.
		if !v.Stop.Set {
			if err := l.alertsHold(ctx, log, v, host, now); err != nil {
				l.asked(group, host, false)
				return err
			}
		}
	}
	_, _, err = place.ChangeLock(ctx, l.locks(st), log, func(v place.View) (place.Change, error) {
		if cur, ok := v.Lock.Holder(host); ok {
			if !ours(cur) {
				return place.Change{}, &Refusal{Kind: KindLockHeld, Value: fmt.Sprintf("%s holds a place in group %s's lock (%s) that no FleetLock request took: a node of that name reboots through rebootmgr itself", host, v.Group, cur.Phase)}
			}
			if v.Stop.Set {
				return place.Change{}, stopRefusal(v.Stop)
			}
			return place.Change{}, errHolds
		}
		if g, ok := v.Fleet.Group(host); ok && g != v.Group {
			return place.Change{}, otherGroup(host, g, "holds a place in")
		}
		if held := v.LegacyHeld(); held != "" {
			// The pipeline's own words name the Python rebootmgr's keys.
			log.Info("the Python rebootmgr holds the group's lock", logkey.Holder, held)
			return place.Change{}, &Refusal{Kind: KindLockHeld, Value: "the Python rebootmgr holds group " + v.Group + "'s lock: wait until its node is back"}
		}
		return place.AcquireIn(ctx, l.health(st, log), log, v, h, now, "health, counting every reboot in flight")
	})
	if errors.Is(err, errHolds) {
		log.Info("pre-reboot from the holder: its place stays granted")
		return nil
	}
	l.asked(group, host, err == nil)
	if errors.Is(err, ending.ErrLockHeld) && !errors.Is(err, lock.ErrYields) {
		// The host waits its turn in the group's queue, as a daemon does: it keeps its place
		// in the order across its retries (one every few minutes, for Zincati), and this server
		// answers for it when a place opens meanwhile (see Run). One that yields to a node with
		// less room has room, and waits for nobody's turn: it joins no queue.
		if full := l.join(ctx, st, log, host); full != nil {
			return full
		}
		l.queued(group, host)
	}
	if err != nil {
		return err
	}
	log.Info("reboot lock taken for a FleetLock host", logkey.Phase, lock.Rebooting)
	return nil
}

// known refuses a group no operator made (see store.Consul.GroupKnown: no key of it, no node of
// the catalog in it; the default group always is), as airlock refuses a group it is not
// configured with: otherwise any client could take a place in a group of its own making, one
// after another, each new group with room for it, until the fleet's record of holders is too
// large to write. Nothing is written for such a group.
func known(ctx context.Context, st *store.Consul, group string) error {
	ok, err := st.GroupKnown(ctx, group)
	if err != nil {
		return err
	}
	if !ok {
		return &Refusal{Kind: KindUnknownGroup, Value: fmt.Sprintf("group %s is not known here: an operator makes it (rebootmgr limit %s N, or a node with node meta %s=%s); a FleetLock request makes none", group, group, store.GroupMeta, group)}
	}
	return nil
}

// join puts host in its group's queue (see lock.Queue), or clears what blocked it there, while
// the queue holds fewer than MaxQueue entries; a host not in a queue that holds as many is
// refused (queue_full) and left out. Any other queue that cannot be written is logged: it
// orders the hosts, it never decides safety.
func (l *Locks) join(ctx context.Context, st *store.Consul, log *slog.Logger, host string) *Refusal {
	now := l.now()
	most := l.MaxQueue
	if most <= 0 {
		most = DefaultMaxQueue
	}
	_, _, err := place.ChangeLock(ctx, l.locks(st), log, func(v place.View) (place.Change, error) {
		if _, in := v.Queue.Place(host); !in && len(v.Queue.Entries) >= most {
			return place.Change{}, &Refusal{Kind: KindQueueFull, Value: fmt.Sprintf("no room in group %s's lock, and its queue is full (%d waiting, the most a FleetLock host may join): %s waits without a place in the order, and may take a place that opens once those in the queue let their turn pass", v.Group, len(v.Queue.Entries), host)}
		}
		q := v.Queue.Join(host, now)
		if q.Equal(v.Queue) {
			return place.Change{}, errHolds
		}
		return place.Change{Lock: v.Lock, Queue: &q}, nil
	})
	var full *Refusal
	switch {
	case errors.As(err, &full):
		log.Warn("the group's queue is full: the host is not queued")
		return full
	case err != nil && !errors.Is(err, errHolds):
		log.Warn("could not put the host in the group's queue", logkey.Err, err)
	}
	return nil
}

// SteadyState gives host's place in group's lock back once its services pass (see hostHealth;
// a host with none passes at once), in the group's record and the fleet's in one transaction,
// and records the reboot in the group's history. A host that holds no place a FleetLock request
// took changes nothing (released is false). A stop flag does not keep the place: the reboot
// happened, and finishes as a daemon's does; nothing can take the place while it is set.
func (l *Locks) SteadyState(ctx context.Context, host, group string) (released bool, err error) {
	st := l.store(group)
	log := l.Logger.With(logkey.Node, host, logkey.Group, group)
	v, err := l.locks(st).View(ctx)
	if err != nil {
		return false, err
	}
	if h, ok := v.Lock.Holder(host); !ok || !ours(h) {
		return false, nil
	}
	// A stop flag (one set here for a holder past its deadline included) holds everything that
	// would start; this reboot started, and is finished under it, as a daemon's is.
	var refused *Refusal
	if err := l.stopOverdue(ctx, st, log, v); err != nil && !errors.As(err, &refused) {
		return false, err
	}
	if err := place.HealthIn(ctx, l.health(st, log), log, v, host, "health after the reboot"); err != nil {
		return false, err
	}
	var held lock.Holder
	v, ch, err := place.ChangeLock(ctx, l.locks(st), log, func(v place.View) (place.Change, error) {
		h, ok := v.Lock.Holder(host)
		if !ok || !ours(h) {
			return place.Change{}, errNotHolder
		}
		held = h
		return place.ReleaseIn(v, host, l.now()), nil
	})
	if errors.Is(err, errNotHolder) {
		// Given back meanwhile (another server, an operator's unlock): nothing left to do.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	l.follow(group, place.WokeEntries(v, ch))
	start := held.RebootStarted
	if start.IsZero() {
		start = held.Since
	}
	if _, err := st.AppendHistory(ctx, history.Entry{Node: host, Start: start, End: l.now().UTC(), Outcome: history.Finished, TriggeredBy: held.TriggeredBy}); err != nil {
		log.Error("could not record the reboot in the history", logkey.Err, err)
	}
	log.Info("reboot finished: lock released for a FleetLock host")
	return true, nil
}

// stopOverdue stops the group for every holder of v past its deadline, as a daemon does (see
// place.StopOverdue), and records each stop in the group's history. A stop it set is a
// refusal (stopped): v, read before, does not have it.
func (l *Locks) stopOverdue(ctx context.Context, st *store.Consul, log *slog.Logger, v place.View) error {
	now := l.now()
	by := l.By
	if by == "" {
		by = "rebootmgr fleetlock"
	}
	unreported, err := place.UnreportedIn(ctx, st, v.Lock, now, v.Sightings)
	if err != nil {
		return err
	}
	stopped, err := place.StopOverdue(ctx, st, log, unreported, now, by)
	for _, o := range stopped {
		e := history.Entry{Node: o.Holder.Node, Start: o.Holder.RebootStarted, End: now.UTC(), Outcome: history.DeadlinePassed, TriggeredBy: o.Holder.TriggeredBy}
		if _, err := st.AppendHistory(ctx, e); err != nil {
			log.Error("could not record the missed deadline in the history", logkey.Err, err)
		}
	}
	if err != nil {
		return err
	}
	if len(stopped) > 0 {
		return &Refusal{Kind: KindStopped, Value: "stop flag set now: " + stopped[0].Reason}
	}
	return nil
}

func stopRefusal(f place.Flag) *Refusal {
	value := "stop flag is set: nothing moves until it is removed"
	if reason := clip.OneLine(f.Value); reason != "" {
		value = "stop flag is set (" + reason + "): nothing moves until it is removed"
	}
	return &Refusal{Kind: KindStopped, Value: value}
}
