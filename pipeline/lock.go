package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/rebootmgr/rebootmgr/cas"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// errConflict is a change whose View went out of date before it was written.
var errConflict = errors.New("reboot lock changed while writing it")

// changeLock is ChangeLock on the pipeline's store, keeping what it read and wrote as seen.
func (p *Pipeline) changeLock(ctx context.Context, change func(View) (Change, error)) (lock.Record, error) {
	v, ch, err := ChangeLock(ctx, p.locks(), p.Logger, func(v View) (Change, error) {
		p.seen.sawView(v, p.Node)
		return change(v)
	})
	if err != nil {
		return lock.Record{}, err
	}
	p.seen.saw(ch.Lock)
	// Whom the change told is followed (see PassTurns), but this node itself: it runs.
	for _, e := range WokeEntries(v, ch) {
		if e.Node != p.Node {
			p.seen.Woke = append(p.seen.Woke, e)
		}
	}
	return ch.Lock, nil
}

// changeQueue changes the group's queue alone (see ChangeQueue), keeping whom it woke as seen.
func (p *Pipeline) changeQueue(ctx context.Context, change func(lock.Queue) lock.Queue) error {
	_, err := p.changeLock(ctx, func(v View) (Change, error) {
		q := change(v.Queue)
		return Change{Lock: v.Lock, Queue: &q}, nil
	})
	return err
}

// ChangeLock reads a View from locks and applies change to it, reading it again when something
// changed before the write: each attempt judges a View and writes against that very View. It
// returns the View the change was written against, and the change.
func ChangeLock(ctx context.Context, locks Locks, log *slog.Logger, change func(View) (Change, error)) (View, Change, error) {
	var view View
	var written Change
	err := cas.Loop(ctx, func() (bool, error) {
		v, err := locks.View(ctx)
		if err != nil {
			return false, err
		}
		ch, err := change(v)
		if err != nil {
			return false, err
		}
		ok, err := locks.Commit(ctx, v, ch)
		if ok {
			view, written = v, ch
		} else if err == nil {
			log.Debug("reboot lock changed under us: reading it again")
		}
		return ok, err
	})
	if errors.Is(err, cas.ErrRaces) {
		return View{}, Change{}, fmt.Errorf("%w: %w", errConflict, err)
	}
	if err != nil {
		return View{}, Change{}, err
	}
	return view, written, nil
}

// acquire takes a place in the group's lock (see AcquireIn).
func (p *Pipeline) acquire(ctx context.Context, why string) error {
	now := p.Clock.Now().UTC()
	h := lock.Holder{Node: p.Node, Zone: p.Zone, Phase: lock.Preparing, Since: now, Updated: now, TriggeredBy: why}
	if _, err := p.changeLock(ctx, func(v View) (Change, error) {
		return AcquireIn(ctx, p.Health, p.Logger, v, h, placeGate)
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
	return Admit(ctx, p.Health, p.Logger, v, lock.Holder{Node: p.Node, Zone: p.Zone}, placeGate, p.Clock.Now())
}

// lockFree says whether this node could take a place in the lock as v has it, or go on with
// the place it holds (nil), or why not.
func (p *Pipeline) lockFree(v View) error {
	return LockFree(v, lock.Holder{Node: p.Node, Zone: p.Zone}, true, p.Clock.Now())
}

// LookAtLock is what a node waiting for the lock does when only the lock changed: it reads the
// View and writes nothing. It returns nil when a whole run is due, because a place is free or a
// holder is past its deadline (the whole run stops the group); else ErrLockHeld, with the next
// holder's deadline as the time to look again.
func (p *Pipeline) LookAtLock(ctx context.Context) (Result, error) {
	v, err := p.locks().View(ctx)
	if err != nil {
		return Result{}, err
	}
	now := p.Clock.Now()
	res := Result{Recheck: v.Lock.NextDeadline(now, v.Sightings)}
	res.Seen.sawView(v, p.Node)
	res.Seen.Queued = v.Queue.Ready(p.Node)
	if len(v.Lock.Overdue(now, v.Sightings)) > 0 {
		return res, nil
	}
	err = p.lockFree(v)
	var nb *notBeforeError
	if errors.As(err, &nb) {
		res.Recheck = earliest(res.Recheck, nb.until)
	}
	return res, err
}

// holder returns this node's entry in the lock, or ErrLockLost.
func (p *Pipeline) holder(ctx context.Context) (lock.Holder, error) {
	rec, _, err := p.Store.Lock(ctx)
	if err != nil {
		return lock.Holder{}, err
	}
	p.seen.saw(rec)
	return p.holderIn(rec)
}

func (p *Pipeline) holderIn(rec lock.Record) (lock.Holder, error) {
	h, ok := rec.Holder(p.Node)
	if !ok {
		return lock.Holder{}, gateFail(ErrLockLost, "this node no longer holds the reboot lock (was it unlocked by an operator?): not rebooting")
	}
	return h, nil
}

// updateHolder changes this node's entry (not its place: the fleet's record is left alone).
func (p *Pipeline) updateHolder(ctx context.Context, update func(lock.Holder) lock.Holder) (lock.Holder, error) {
	var out lock.Holder
	_, err := p.changeLock(ctx, func(v View) (Change, error) {
		h, err := p.holderIn(v.Lock)
		if err != nil {
			return Change{}, err
		}
		out = update(h)
		out.Updated = p.Clock.Now().UTC()
		rec, err := v.Lock.Update(out)
		return Change{Lock: rec}, err
	})
	return out, err
}

// beginReboot moves this node's entry to phase rebooting, then reads the stop flags, the lock,
// the limit and the Python rebootmgr's keys once more: that read is the last thing before the
// reboot command. A stop flag, a limit lowered below the group's reboots, a Python holder or a
// lost place found then (or before the write) puts the entry back to preparing: the node keeps
// its place and does not reboot.
func (p *Pipeline) beginReboot(ctx context.Context, update func(lock.Holder) lock.Holder) error {
	_, err := p.changeLock(ctx, func(v View) (Change, error) {
		if err := p.mayReboot(v); err != nil {
			return Change{}, err
		}
		h, _ := v.Lock.Holder(p.Node)
		next := update(h)
		next.Updated = p.Clock.Now().UTC()
		rec, err := v.Lock.Update(next)
		return Change{Lock: rec}, err
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
	if errors.Is(err, ErrLockLost) {
		return err
	}
	_ = p.undoReboot(ctx, err)
	return err
}

// mayReboot says whether this node, holding a place, may be rebooting in v.
func (p *Pipeline) mayReboot(v View) error {
	if v.Stop.Set {
		return stopError(v.Stop)
	}
	if _, err := p.holderIn(v.Lock); err != nil {
		return err
	}
	if held := v.LegacyHeld(); held != "" {
		return waitInPlace("the Python rebootmgr holds the lock (%s): not rebooting; this node keeps its place and waits", held)
	}
	return withinLimit(v, lock.Holder{Node: p.Node, Zone: p.Zone})
}

// release gives this node's place back, in the group's record and the fleet's.
func (p *Pipeline) release(ctx context.Context) error {
	_, err := p.changeLock(ctx, func(v View) (Change, error) { return ReleaseIn(v, p.Node, p.Clock.Now()), nil })
	return err
}
