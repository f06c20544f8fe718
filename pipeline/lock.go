package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/rebootmgr/rebootmgr/cas"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// errConflict is a change whose View went out of date before it was written.
var errConflict = errors.New("reboot lock changed while writing it")

// changeLock reads the View and applies change to it, reading it again when something changed
// before the write: each attempt judges a View and writes against that very View.
func (p *Pipeline) changeLock(ctx context.Context, change func(View) (Change, error)) (lock.Record, error) {
	var rec lock.Record
	err := cas.Loop(func() (bool, error) {
		v, err := p.Store.View(ctx)
		if err != nil {
			return false, err
		}
		p.seen.saw(v.Lock)
		ch, err := change(v)
		if err != nil {
			return false, err
		}
		ok, err := p.Store.Commit(ctx, v, ch)
		if ok {
			p.seen.saw(ch.Lock)
			rec = ch.Lock
		} else if err == nil {
			p.Logger.Debug("reboot lock changed under us: reading it again")
		}
		return ok, err
	})
	if errors.Is(err, cas.ErrRaces) {
		return lock.Record{}, fmt.Errorf("%w: %w", errConflict, err)
	}
	return rec, err
}

// acquire takes a place in the group's lock. The place is taken only in a View in which the
// lock has room, no Python rebootmgr holds it, and the node's services keep their quorum with
// every reboot in flight anywhere in the fleet counted as failing; the write succeeds only if
// that View is still current, so two nodes never both take a place on views that miss each
// other.
func (p *Pipeline) acquire(ctx context.Context, why string) error {
	now := p.Clock.Now().UTC()
	_, err := p.changeLock(ctx, func(v View) (Change, error) {
		if g, ok := v.Fleet.Group(p.Node); ok && g != v.Group {
			return Change{}, fmt.Errorf("the fleet's holders say this node holds a place in group %s's lock, and it is now in group %s: it takes no second place; if that reboot is over, rebootmgr unlock %s --group %s", g, v.Group, p.Node, g)
		}
		if err := p.admit(ctx, v, "health, counting every reboot in flight"); err != nil {
			return Change{}, err
		}
		rec, err := v.Lock.Acquire(lock.Holder{Node: p.Node, Phase: lock.Preparing, Since: now, Updated: now, TriggeredBy: why}, v.Limit)
		if err != nil {
			return Change{}, err
		}
		fleet := v.Fleet.With(p.Node, v.Group)
		return Change{Lock: rec, Fleet: &fleet}, nil
	})
	if err != nil {
		return err
	}
	p.Logger.Info("reboot lock taken", logkey.Step, "lock")
	return nil
}

// admit says whether this node may take a place in v: no stop flag, the lock has room, no
// Python rebootmgr holds it, and health holds with every reboot in flight counted as failing.
func (p *Pipeline) admit(ctx context.Context, v View, gate string) error {
	if v.Stop.Set {
		return stopError(v.Stop)
	}
	if err := p.lockFree(v); err != nil {
		return err
	}
	return p.checkHealthIn(ctx, v, gate)
}

// checkLockFree is the dry run's lock gate: it reads, and says whether acquire would succeed.
func (p *Pipeline) checkLockFree(ctx context.Context) error {
	v, err := p.Store.View(ctx)
	if err != nil {
		return err
	}
	p.seen.saw(v.Lock)
	return p.admit(ctx, v, "health, counting every reboot in flight")
}

// lockFree says whether this node could take a place in the lock as v has it, or go on with
// the place it holds (nil), or why not.
func (p *Pipeline) lockFree(v View) error {
	if held := v.LegacyHeld(); held != "" {
		if _, ok := v.Lock.Holder(p.Node); ok {
			return waitInPlace("the Python rebootmgr holds the lock (%s): not rebooting; this node keeps its place and waits", held)
		}
		return gateFail(ErrLockHeld, "cannot take the reboot lock: the Python rebootmgr holds it (%s); wait for that node, or delete the key once it is back", held)
	}
	if h, ok := v.Lock.Holder(p.Node); ok {
		if h.Phase != lock.Preparing {
			return nil
		}
		return p.withinLimit(v)
	}
	if _, err := v.Lock.Acquire(lock.Holder{Node: p.Node, Phase: lock.Preparing}, v.Limit); err != nil {
		return gateWrap(ErrLockHeld, err, "cannot take the reboot lock")
	}
	return nil
}

// LookAtLock is what a node waiting for the lock does when only the lock changed: it reads the
// View and writes nothing. It returns nil when a whole run is due, because a place is free or a
// holder is past its deadline (the whole run stops the group); else ErrLockHeld, with the next
// holder's deadline as the time to look again.
func (p *Pipeline) LookAtLock(ctx context.Context) (Result, error) {
	v, err := p.Store.View(ctx)
	if err != nil {
		return Result{}, err
	}
	now := p.Clock.Now()
	res := Result{Recheck: v.Lock.NextDeadline(now), Seen: Seen{Lock: &v.Lock}}
	if len(v.Lock.Overdue(now)) > 0 {
		return res, nil
	}
	return res, p.lockFree(v)
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
	v, err := p.Store.View(ctx)
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
	return p.withinLimit(v)
}

// withinLimit says whether fewer than the group's limit of its other holders are rebooting or
// finishing: a limit lowered while nodes prepare holds them back, keeping their places.
func (p *Pipeline) withinLimit(v View) error {
	going := 0
	for _, o := range v.Lock.Holders {
		if o.Node != p.Node && o.Phase != lock.Preparing {
			going++
		}
	}
	if going >= v.Limit {
		return waitInPlace("group %s allows %d reboots at once and %d other nodes are rebooting: not rebooting yet; this node keeps its place and waits", v.Group, v.Limit, going)
	}
	return nil
}

// release gives this node's place back, in the group's record and the fleet's.
func (p *Pipeline) release(ctx context.Context) error {
	_, err := p.changeLock(ctx, func(v View) (Change, error) {
		fleet := v.Fleet.Without(p.Node, v.Group)
		return Change{Lock: v.Lock.Release(p.Node), Fleet: &fleet}, nil
	})
	return err
}
