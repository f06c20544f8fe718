package pipeline_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// TestLookAtLock: a node waiting for the lock, looking at it alone, writes nothing; it is due a
// whole run when a place is free for it or a holder is past its deadline (the run stops the
// group), and otherwise waits, looking again at the next holder's deadline or when its turn
// comes.
func TestLookAtLock(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	deadline := t0.Add(20 * time.Minute)
	for _, tt := range []struct {
		name    string
		holders []lock.Holder
		queue   []string
		err     error
		recheck time.Time
		queued  bool
	}{
		{name: "a free place", err: nil},
		{name: "a holder preparing", holders: []lock.Holder{{Node: "n7", Phase: lock.Preparing, Since: t0}}, err: lock.ErrFull},
		{name: "a holder rebooting, its deadline ahead", holders: []lock.Holder{{Node: "n7", Phase: lock.Rebooting, Since: t0, RebootStarted: t0, Deadline: deadline}},
			err: lock.ErrFull, recheck: deadline},
		{name: "a holder past its deadline", holders: []lock.Holder{{Node: "n7", Phase: lock.Rebooting, Since: t0.Add(-time.Hour), RebootStarted: t0.Add(-time.Hour), Deadline: t0.Add(-time.Minute)}},
			err: nil},
		{name: "a free place, another node's turn", queue: []string{"n2", "n1"}, err: lock.ErrQueued, recheck: t0.Add(lock.QueueGrace), queued: true},
		{name: "a free place, its own turn", queue: []string{"n1", "n2"}, err: nil, queued: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.store.PutLock(lock.Record{Version: lock.Version, Holders: tt.holders})
			if tt.queue != nil {
				q := lock.Queue{Version: lock.Version}
				for _, n := range tt.queue {
					q = q.Join(n, t0.Add(-time.Hour))
				}
				q.Freed = t0
				data, err := q.Encode()
				if err != nil {
					t.Fatal(err)
				}
				m.store.Put("groups/default/queue", string(data))
			}
			writes := m.store.Writes()
			res, err := m.pipeline().LookAtLock(t.Context())
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("%v, want a whole run due", err)
			case tt.err != nil && (!errors.Is(err, ending.ErrLockHeld) || !errors.Is(err, tt.err)):
				t.Fatalf("%v, want %v", err, tt.err)
			}
			if !res.Recheck.Equal(tt.recheck) {
				t.Errorf("looks again at %v, want %v", res.Recheck, tt.recheck)
			}
			if res.Seen.Queued != tt.queued || res.Seen.Lock == nil || res.Seen.InFlight == nil {
				t.Errorf("seen %+v: queued %v, want %v, with the lock and the reboots in flight", res.Seen, res.Seen.Queued, tt.queued)
			}
			if m.store.Writes() != writes {
				t.Errorf("%d writes", m.store.Writes()-writes)
			}
		})
	}
}

// TestNoneLanded: no reboot in flight ended between two runs when every node counted before is
// counted after; unknown (nil) is never none.
func TestNoneLanded(t *testing.T) {
	for _, tt := range []struct {
		name          string
		before, after []string
		none          bool
	}{
		{"not read before", nil, []string{"n7"}, false},
		{"not read after", []string{"n7"}, nil, false},
		{"none in flight, both times", []string{}, []string{}, true},
		{"the same", []string{"n7", "n8"}, []string{"n7", "n8"}, true},
		{"one more", []string{"n7"}, []string{"n7", "n8"}, true},
		{"one ended", []string{"n7", "n8"}, []string{"n8"}, false},
		{"one ended, another started", []string{"n7"}, []string{"n8"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := pipeline.NoneLanded(tt.before, tt.after); got != tt.none {
				t.Fatalf("NoneLanded(%v, %v) = %v, want %v", tt.before, tt.after, got, tt.none)
			}
		})
	}
}
