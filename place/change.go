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
