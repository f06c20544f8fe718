package place_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// untold is a store whose policy denies the turn keys: it writes a change, but tells nobody.
type untold struct{ place.Locks }

func (u untold) Commit(ctx context.Context, v place.View, ch place.Change) (bool, error) {
	ok, err := u.Locks.Commit(ctx, v, ch)
	if ok && err == nil && len(place.Woken(v, ch)) > 0 {
		return true, place.ErrUntold
	}
	return ok, err
}

// TestUntoldAreNotFollowed: a place given back wakes the node at the queue's front, which the
// process that gave it back follows, and passes over if it does not answer; when the store could
// not tell it (its turn key denied), the change is still written, and nobody follows a node that
// had no wake to answer.
func TestUntoldAreNotFollowed(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		wrap     func(place.Locks) place.Locks
		followed int
	}{
		{"told", func(l place.Locks) place.Locks { return l }, 1},
		{"not told", func(l place.Locks) place.Locks { return untold{l} }, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := pipelinetest.NewStore("default", "x")
			st.PutLock(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "x", Phase: lock.Finishing, Since: t0}}})
			q, _ := lock.Queue{Version: lock.Version}.Join("a", t0).Encode()
			st.Put("groups/default/queue", string(q))
			v, ch, err := place.ChangeLock(context.Background(), tt.wrap(st), slog.New(slog.DiscardHandler), func(v place.View) (place.Change, error) {
				return place.ReleaseIn(v, "x", t0), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if rec, _, _ := st.Lock(context.Background()); len(rec.Holders) != 0 {
				t.Fatalf("the place was not given back: %+v", rec)
			}
			if got := place.WokeEntries(v, ch); len(got) != tt.followed {
				t.Fatalf("followed %v, want %d", got, tt.followed)
			}
		})
	}
}
