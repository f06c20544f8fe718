package place

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/rebootmgr/rebootmgr/cas"
)

// errConflict is a change whose View went out of date before it was written.
var errConflict = errors.New("reboot lock changed while writing it")

// ErrUntold is what Locks.Commit returns, with true, when it wrote a change but could not tell
// the nodes the change woke (an ACL policy from before the turn keys denies them): they see the
// place at their next tick, and nobody passes them over for not answering a wake they never had.
var ErrUntold = errors.New("the change was written, but the nodes it woke could not be told")

// ChangeLock reads a View from locks and applies change to it, reading it again when something
// changed before the write: each attempt judges a View and writes against that very View. It
// returns the View the change was written against, and the change (Untold when the nodes it woke
// could not be told: see ErrUntold).
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
		if errors.Is(err, ErrUntold) {
			ok, err, ch.Untold = true, nil, true
		}
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
