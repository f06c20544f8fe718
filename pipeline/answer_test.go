package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestWokenNodeAnswers: a node told of a place that waits for the node before it says so in the
// queue, whatever its clock, so that the pass over the nodes that did not answer does not take it
// for gone. Its entry's time and the moment the place opened are of two clocks: a node whose
// clock is two minutes ahead joined "after" the place opened by its own clock, and, compared as
// written, held it had said enough already (the fault run, seed 1 with 200 faults: gw2, its
// clock ahead, was marked as having missed its turn while its daemon ran).
func TestWokenNodeAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st := pipelinetest.NewStore("default", "n2")
	// head asked first and its daemon is gone; n2 asked 30 s before r gives its place back at t0,
	// by its clock two minutes ahead.
	q := lock.Queue{Version: lock.Version}.Join("head", t0.Add(-time.Hour)).Join("n2", t0.Add(2*time.Minute-30*time.Second))
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))
	st.PutLock(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "r", Phase: lock.Finishing, Since: t0.Add(-time.Hour), Updated: t0}}})
	f, _ := lock.Fleet{Version: lock.Version}.With("r", "default").Encode()
	st.Put("holders", string(f))
	n2 := newSkewedNode(t, st, "n2", t0.Add(2*time.Minute))
	release(t, st, "r", t0)
	woke := queueIn(t, st).Entries

	if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
		t.Fatalf("n2 behind head, just freed: %v", err)
	}
	if _, err := place.PassTurns(ctx, st, slog.New(slog.DiscardHandler), woke, 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, e := range queueIn(t, st).Entries {
		if want := map[string]string{"head": lock.MissedTurn, "n2": ""}[e.Node]; e.Blocked != want {
			t.Errorf("%s after the pass: blocked %q, want %q (queue %+v)", e.Node, e.Blocked, want, queueIn(t, st).Entries)
		}
	}
}

// TestNodeWaitingForRoomAnswers: a node waiting for its group's reboots in flight (lock.ForRoom)
// that is woken and finds a gate of its own (here: its group's limit set to auto meanwhile, under
// which it waits for health as for any gate) answers by saying so in the queue, so that the pass
// over the nodes that did not answer does not take it for gone (the simulator: seed 1, the fault
// that sets a limit to auto, passed such a node over while its daemon ran).
func TestNodeWaitingForRoomAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st := pipelinetest.NewStore("default", "n2")
	q := lock.Queue{Version: lock.Version}.WaitRoom("n2", t0.Add(-time.Minute))
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))
	st.SetLimitSpec("auto")
	st.PutLock(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "r", Phase: lock.Rebooting, Since: t0.Add(-time.Minute)}}})
	f, _ := lock.Fleet{Version: lock.Version}.With("r", "default").Encode()
	st.Put("holders", string(f))
	n2 := newSkewedNode(t, st, "n2", t0)
	h := &pipelinetest.Health{}
	h.Set(pipelinetest.Service("svc", []string{"max_failing=0"}, "n2", "r"))
	n2.p.Health = h
	woke := queueIn(t, st).Entries

	if _, err := n2.p.Run(pipeline.Told(ctx)); err == nil {
		t.Fatal("n2 ran on with a reboot in flight that its rules cannot bear")
	}
	if _, err := place.PassTurns(ctx, st, slog.New(slog.DiscardHandler), woke, 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	entries := queueIn(t, st).Entries
	if len(entries) != 1 || entries[0].Blocked == lock.ForRoom || entries[0].Blocked == lock.MissedTurn || entries[0].Blocked == "" {
		t.Fatalf("n2 after its run and the pass: %+v, want it blocked by its health", entries)
	}
}
