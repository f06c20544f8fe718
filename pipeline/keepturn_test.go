package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestKeepingTheTurnWritesOnceAKeepEvery: a node held back by its group's cooldown keeps its
// turn in the queue by saying so once a KeepEvery at most. A run soon after the last (as its own
// write of the queue wakes its daemon) writes nothing: were it to write, that write would wake
// it again at once, and it would run as fast as Consul answers until the cooldown is over.
func TestKeepingTheTurnWritesOnceAKeepEvery(t *testing.T) {
	m := newMachine(t)
	m.config.Cooldown = time.Hour
	ctx := context.Background()
	now := m.clock.Now()
	if _, err := m.store.AppendHistory(ctx, history.Entry{Node: "n9", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished}); err != nil {
		t.Fatal(err)
	}
	m.store.SetTrigger("n1", "kernel", true)
	steps := []struct {
		name   string
		after  time.Duration
		writes bool
	}{
		{"the first run joins the queue", 0, true},
		{"a run at once, woken by that write, writes nothing", 10 * time.Millisecond, false},
		{"nor does one a few seconds on", 5 * time.Second, false},
		{"the run a KeepEvery on says it again", lock.KeepEvery, true},
		{"and the one right after it does not", 10 * time.Millisecond, false},
	}
	for _, st := range steps {
		m.clock.Set(m.clock.Now().Add(st.after))
		before := m.store.Writes()
		res, err := m.run(ctx)
		if !errors.Is(err, ending.ErrOutsideWindow) {
			t.Fatalf("%s: %v, want the cooldown", st.name, err)
		}
		if res.Recheck.IsZero() || res.Recheck.After(m.clock.Now().Add(lock.KeepEvery)) {
			t.Fatalf("%s: looks again at %v, want within %s of %v", st.name, res.Recheck, lock.KeepEvery, m.clock.Now())
		}
		if wrote := m.store.Writes() > before; wrote != st.writes {
			t.Fatalf("%s: wrote %v, want %v", st.name, wrote, st.writes)
		}
	}
}
