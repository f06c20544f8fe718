package pipeline

import (
	"context"
	"errors"
	"slices"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// locks are the pipeline's locks, their Views judged by its sightings, which hear from each
// whether the group was stopped, and its limit (see lock.Sightings.Stopped and Limited).
func (p *Pipeline) locks() place.Locks {
	return stopsSeen{Locks: place.Sighted(p.Store, p.Sightings), p: p}
}

type stopsSeen struct {
	place.Locks
	p *Pipeline
}

func (s stopsSeen) View(ctx context.Context) (place.View, error) {
	v, err := s.Locks.View(ctx)
	if err == nil {
		now := s.p.Clock.Now()
		s.p.Sightings.Stopped(v.Stop.Set, now)
		s.p.Sightings.Limited(v.Limit.String(), now)
	}
	return v, err
}

// changeLock is place.ChangeLock on the pipeline's store, keeping what it read and wrote as seen.
func (p *Pipeline) changeLock(ctx context.Context, change func(place.View) (place.Change, error)) (lock.Record, error) {
	v, ch, err := place.ChangeLock(ctx, p.locks(), p.Logger, func(v place.View) (place.Change, error) {
		p.seen.sawView(v, p.Node)
		return change(v)
	})
	if err != nil {
		return lock.Record{}, err
	}
	p.seen.saw(ch.Lock)
	// Whom the change told is followed (see place.PassTurns), but this node itself: it runs.
	for _, e := range place.WokeEntries(v, ch) {
		if e.Node != p.Node {
			p.seen.Woke = append(p.seen.Woke, e)
		}
	}
	return ch.Lock, nil
}

// changeQueue changes the group's queue alone (see place.ChangeQueue), keeping whom it woke as seen.
func (p *Pipeline) changeQueue(ctx context.Context, change func(lock.Queue) lock.Queue) error {
	_, err := p.changeLock(ctx, func(v place.View) (place.Change, error) {
		q := change(v.Queue)
		return place.Change{Lock: v.Lock, Queue: &q}, nil
	})
	return err
}

// acquire takes a place in the group's lock (see place.AcquireIn).
func (p *Pipeline) acquire(ctx context.Context, why string) error {
	now := p.Clock.Now()
	at := now.UTC()
	h := lock.Holder{Node: p.Node, Zone: p.Zone, Phase: lock.Preparing, Since: at, Updated: at, TriggeredBy: why}
	if _, err := p.changeLock(ctx, func(v place.View) (place.Change, error) {
		return place.AcquireIn(ctx, p.health(), p.Logger, v, h, now, placeGate)
	}); err != nil {
		return err
	}
	p.Logger.Info("reboot lock taken", logkey.Step, "lock")
	return nil
}

// placeGate names the health gate judged on the View a place is taken in.
const placeGate = "health, counting every reboot in flight"

// checkLockFree is the dry run's lock gate: it reads, and says whether acquire would succeed.
func (p *Pipeline) checkLockFree(ctx context.Context) error {
	v, err := p.locks().View(ctx)
	if err != nil {
		return err
	}
	p.seen.sawView(v, p.Node)
	return place.Admit(ctx, p.health(), p.Logger, v, lock.Holder{Node: p.Node, Zone: p.Zone}, placeGate, p.Clock.Now())
}

// lockFree says whether this node could take a place in the lock as v has it, or go on with
// the place it holds (nil), or why not.
func (p *Pipeline) lockFree(v place.View) error {
	return place.LockFree(v, lock.Holder{Node: p.Node, Zone: p.Zone}, true, p.Clock.Now())
}

// LookAtLock is what a node waiting for the lock does when only the lock changed: it reads the
// View and writes nothing. It returns nil when a whole run is due, because a place is free or a
// holder is past its deadline (the whole run stops the group); else ending.ErrLockHeld, with the next
// holder's deadline as the time to look again.
func (p *Pipeline) LookAtLock(ctx context.Context) (Result, error) {
	v, err := p.locks().View(ctx)
	if err != nil {
		return Result{}, err
	}
	now := p.Clock.Now()
	res := Result{Recheck: v.Lock.NextDeadline(now, v.Sightings)}
	res.Seen.sawView(v, p.Node)
	res.Seen.Standing = standingIn(v.Queue, p.Node)
	res.Seen.Queued = res.Seen.Standing == QueuedReady
	res.Seen.Partial = v.Partial
	res.Seen.Front = slices.Contains(v.Queue.Front(v.Lock, v.Limit, v.GroupNodes, v.Zones), p.Node)
	if len(v.Lock.Overdue(now, v.Sightings)) > 0 {
		res.Seen.Overdue = true
		return res, nil
	}
	err = p.lockFree(v)
	res.Recheck = earliest(res.Recheck, ending.Until(err))
	return res, err
}

// LookAtQueue is LookAtLock on a View of the queue's front alone (place.FrontOnly): what a node
// waiting for its turn reads at its tick, whatever the group's size. Its Result says so
// (Seen.Partial): the node's own entry, the lock and the holders are as stored; that the node is
// not at the front, or that nodes before it go first, holds of the whole queue too; the
// contrary is known only from the whole View (LookAtLock).
func (p *Pipeline) LookAtQueue(ctx context.Context) (Result, error) {
	return p.LookAtLock(place.FrontOnly(ctx, p.Node))
}

// holder returns this node's entry in the lock, or ending.ErrLockLost.
func (p *Pipeline) holder(ctx context.Context) (lock.Holder, error) {
	rec, _, err := p.Store.Lock(ctx)
	if err != nil {
		return lock.Holder{}, err
	}
	p.seen.saw(rec)
	return p.holderIn(rec)
}

func (p *Pipeline) holderIn(rec lock.Record) (lock.Holder, error) {
	return place.HolderIn(rec, p.Node)
}

// updateHolder changes this node's entry (not its place: the fleet's record is left alone).
func (p *Pipeline) updateHolder(ctx context.Context, update func(lock.Holder) lock.Holder) (lock.Holder, error) {
	var out lock.Holder
	_, err := p.changeLock(ctx, func(v place.View) (place.Change, error) {
		h, err := p.holderIn(v.Lock)
		if err != nil {
			return place.Change{}, err
		}
		out = update(h)
		out.Updated = p.Clock.Now().UTC()
		rec, err := v.Lock.Update(out)
		return place.Change{Lock: rec}, err
	})
	return out, err
}

// beginReboot moves this node's entry to phase rebooting, then reads the stop flags, the node's
// disabled mark, the lock, the limit and the Python rebootmgr's keys once more, in one read:
// that read is the last thing before the reboot command. A stop flag, the node disabled, a limit
// lowered below the group's reboots, a Python holder or a lost place found then (or before the
// write) puts the entry back to preparing, and the node does not reboot. Its run ends as the
// gate's would: a node disabled gives its place back, the others keep it.
func (p *Pipeline) beginReboot(ctx context.Context, update func(lock.Holder) lock.Holder) error {
	ctx = place.ForNode(ctx, p.Node)
	_, err := p.changeLock(ctx, func(v place.View) (place.Change, error) {
		if err := p.mayReboot(v); err != nil {
			return place.Change{}, err
		}
		h, _ := v.Lock.Holder(p.Node)
		next := update(h)
		next.Updated = p.Clock.Now().UTC()
		rec, err := v.Lock.Update(next)
		return place.Change{Lock: rec}, err
	})
	if err != nil {
		return err
	}
	v, err := p.locks().View(ctx)
	if err == nil {
		p.seen.saw(v.Lock)
		err = p.mayReboot(v)
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, ending.ErrLockLost) {
		return err
	}
	_ = p.undoReboot(ctx, err)
	return err
}

// mayReboot says whether this node, holding a place, may be rebooting in v (see
// place.MayReboot).
func (p *Pipeline) mayReboot(v place.View) error {
	return place.MayReboot(v, lock.Holder{Node: p.Node, Zone: p.Zone})
}

// release gives this node's place back, in the group's record and the fleet's.
func (p *Pipeline) release(ctx context.Context) error {
	_, err := p.changeLock(ctx, func(v place.View) (place.Change, error) { return place.ReleaseIn(v, p.Node, p.Clock.Now()), nil })
	return err
}

// PassTurns passes over the nodes of woke that did not answer (see place.PassTurns), on this
// pipeline's store.
func (p *Pipeline) PassTurns(ctx context.Context, woke []lock.QueueEntry, more int) ([]lock.QueueEntry, error) {
	return place.PassTurns(ctx, p.locks(), p.Logger, woke, more, p.Clock.Now())
}
