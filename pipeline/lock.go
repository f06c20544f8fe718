package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	if err := p.checkLegacy(ctx); err != nil {
		return err
	}
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

// checkLockFree is the dry run's lock gate: it reads, and says whether acquire would succeed.
func (p *Pipeline) checkLockFree(ctx context.Context) error {
	rec, _, err := p.Store.Lock(ctx)
	if err != nil {
		return err
	}
	p.seen.saw(rec)
	if err := p.checkLegacy(ctx); err != nil {
		return err
	}
	return p.lockFree(ctx, rec)
}

// checkLegacy keeps the lock while the Python rebootmgr has a reboot in progress: during a
// switch from it, its reboots count as holders.
func (p *Pipeline) checkLegacy(ctx context.Context) error {
	legacy, err := p.Store.LegacyReboots(ctx)
	if err != nil {
		return err
	}
	if len(legacy) > 0 {
		return gateFail(ErrLockHeld, "cannot take the reboot lock: the Python rebootmgr has a reboot in progress (%s); delete the key once that node is back", strings.Join(legacy, ", "))
	}
	return nil
}

// lockFree says whether this node could take the lock as rec has it now (nil), or why not.
func (p *Pipeline) lockFree(ctx context.Context, rec lock.Record) error {
	limit, err := p.Store.Limit(ctx)
	if err != nil {
		return err
	}
	if _, err := rec.Acquire(lock.Holder{Node: p.Node, Phase: lock.Preparing}, limit); err != nil {
		return gateWrap(ErrLockHeld, err, "cannot take the reboot lock")
	}
	return nil
}

// LookAtLock is what a node waiting for the lock does when only the lock changed: it reads the
// lock and the limit and writes nothing. It returns nil when a whole run is due, because a place
// is free or a holder is past its deadline (the whole run stops the group); else ErrLockHeld,
// with the next holder's deadline as the time to look again.
func (p *Pipeline) LookAtLock(ctx context.Context) (Result, error) {
	rec, _, err := p.Store.Lock(ctx)
	if err != nil {
		return Result{}, err
	}
	now := p.Clock.Now()
	res := Result{Recheck: rec.NextDeadline(now), Seen: Seen{Lock: &rec}}
	if len(rec.Overdue(now)) > 0 {
		return res, nil
	}
	return res, p.lockFree(ctx, rec)
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
