package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/rebootmgr/rebootmgr/lock"
)

// changeLock applies change to the lock record with check-and-set, reading it again when
// another node wrote it in between.
func (p *Pipeline) changeLock(ctx context.Context, change func(lock.Record) (lock.Record, error)) (lock.Record, error) {
	for range lockAttempts {
		rec, index, err := p.Store.Lock(ctx)
		if err != nil {
			return lock.Record{}, err
		}
		p.seen.saw(rec)
		next, err := change(rec)
		if err != nil {
			return lock.Record{}, err
		}
		ok, err := p.Store.CASLock(ctx, next, index)
		if err != nil {
			return lock.Record{}, err
		}
		if ok {
			p.seen.saw(next)
			return next, nil
		}
		p.Logger.Debug("reboot lock changed under us: reading it again")
	}
	return lock.Record{}, fmt.Errorf("reboot lock changed %d times while writing it: giving up", lockAttempts)
}

func (p *Pipeline) acquire(ctx context.Context, why string) error {
	now := p.Clock.Now().UTC()
	limit, err := p.Store.Limit(ctx)
	if err != nil {
		return err
	}
	_, err = p.changeLock(ctx, func(rec lock.Record) (lock.Record, error) {
		return rec.Acquire(lock.Holder{Node: p.Node, Phase: lock.Preparing, Since: now, Updated: now, TriggeredBy: why}, limit)
	})
	var full *lock.FullError
	if errors.As(err, &full) {
		return gateWrap(ErrLockHeld, err, "cannot take the reboot lock")
	}
	if err != nil {
		return err
	}
	p.Logger.Info("reboot lock taken", "step", "lock")
	return nil
}

// CheckLock is the lock gate alone: it reads the lock record and the limit, writes nothing,
// and says whether this node could take the lock now (nil), or why not (ErrLockHeld). A dry
// run uses it in place of taking the lock; a daemon waiting for the lock, to look cheaply.
func (p *Pipeline) CheckLock(ctx context.Context) error {
	rec, _, err := p.Store.Lock(ctx)
	if err != nil {
		return err
	}
	p.seen.saw(rec)
	limit, err := p.Store.Limit(ctx)
	if err != nil {
		return err
	}
	if _, err := rec.Acquire(lock.Holder{Node: p.Node, Phase: lock.Preparing}, limit); err != nil {
		return gateWrap(ErrLockHeld, err, "cannot take the reboot lock")
	}
	return nil
}

// holder returns this node's entry in the lock, or ErrLockLost.
func (p *Pipeline) holder(ctx context.Context) (lock.Holder, error) {
	rec, _, err := p.Store.Lock(ctx)
	if err != nil {
		return lock.Holder{}, err
	}
	p.seen.saw(rec)
	h, ok := rec.Holder(p.Node)
	if !ok {
		return lock.Holder{}, gateFail(ErrLockLost, "this node no longer holds the reboot lock (was it unlocked by an operator?): not rebooting")
	}
	return h, nil
}

func (p *Pipeline) updateHolder(ctx context.Context, update func(lock.Holder) lock.Holder) (lock.Holder, error) {
	var out lock.Holder
	_, err := p.changeLock(ctx, func(rec lock.Record) (lock.Record, error) {
		h, ok := rec.Holder(p.Node)
		if !ok {
			return rec, gateFail(ErrLockLost, "this node no longer holds the reboot lock (was it unlocked by an operator?)")
		}
		out = update(h)
		out.Updated = p.Clock.Now().UTC()
		return rec.Update(out)
	})
	return out, err
}

func (p *Pipeline) release(ctx context.Context) error {
	_, err := p.changeLock(ctx, func(rec lock.Record) (lock.Record, error) {
		return rec.Release(p.Node), nil
	})
	return err
}
