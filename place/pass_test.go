package place_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestPassSparesNodesAZoneKeepsOut: a place given back under a limit bounded per zone wakes the
// front of the queue; once a node of a zone takes a place, the nodes of other zones woken with it
// cannot take one (one zone at a time), and stay as they were woken. The pass over the nodes that did not answer
// passes over a silent node whose zone may go, and never one that its zone keeps out: its silence
// is no sign that its daemon is gone (the simulator: every seed of --limit "3 per-zone=1" passed
// live nodes over, 31 at seed 1 with no fault).
func TestPassSparesNodesAZoneKeepsOut(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	st := pipelinetest.NewStore("default", "a1")
	st.SetLimitSpec("3 per-zone=2")
	st.Zones = map[string]string{"a1": "a", "a2": "a", "b1": "b"}
	q := lock.Queue{Version: lock.Version}.Join("a1", t0).Join("a2", t0).Join("b1", t0)
	q.Freed = t0
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))
	woke := q.Entries
	// a1 takes a place: its zone reboots, and b1, of another, may not take one (one zone at a
	// time); a2, of the same zone, may, and says nothing.
	_, _, err := place.ChangeLock(t.Context(), st, slog.New(slog.DiscardHandler), func(v place.View) (place.Change, error) {
		rec, err := v.Lock.Acquire(lock.Holder{Node: "a1", Zone: "a", Phase: lock.Preparing, Since: t0}, 3)
		served := v.Queue.Served("a1", t0, nil, nil)
		return place.Change{Lock: rec, Queue: &served}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := place.PassTurns(t.Context(), st, slog.New(slog.DiscardHandler), woke, 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	v, err := st.View(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range v.Queue.Entries {
		if want := map[string]string{"a2": lock.MissedTurn, "b1": ""}[e.Node]; e.Blocked != want {
			t.Errorf("%s after the pass: blocked %q, want %q (queue %+v)", e.Node, e.Blocked, want, v.Queue.Entries)
		}
	}
}

// TestPassSparesNodesBehindAPythonHolder: while the Python rebootmgr holds the lock, no node of
// the queue could take a place, and one that waits for it hears the lock, not its turn key: a
// node woken that said nothing is not passed over (the simulator: --python-every 3
// --strict-turns --seed 12).
func TestPassSparesNodesBehindAPythonHolder(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		python bool
		want   string
	}{{"a Python holder", true, ""}, {"none", false, lock.MissedTurn}} {
		t.Run(tt.name, func(t *testing.T) {
			st := pipelinetest.NewStore("default", "a1")
			st.SetLimit(2)
			q := lock.Queue{Version: lock.Version}.Join("a1", t0)
			q.Freed = t0
			data, _ := q.Encode()
			st.Put("groups/default/queue", string(data))
			st.SetLegacy("reboot_in_progress", "py1", tt.python)
			if _, err := place.PassTurns(t.Context(), st, slog.New(slog.DiscardHandler), q.Entries, 4, time.Now()); err != nil {
				t.Fatal(err)
			}
			v, err := st.View(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Queue.Entries[0].Blocked; got != tt.want {
				t.Fatalf("a1 after the pass: blocked %q, want %q", got, tt.want)
			}
		})
	}
}
