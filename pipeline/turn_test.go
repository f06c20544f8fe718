package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// TestStayGreenKeepsTheTurn: a node whose turn it is, staying green for longer than a turn
// lasts (five minutes, docs/configuration.md's example), keeps its turn all along: the node behind it,
// looking at any moment of it, waits; and it takes the place once green long enough.
func TestStayGreenKeepsTheTurn(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st := pipelinetest.NewStore("default", "n1")
	n1 := newSkewedNode(t, st, "n1", t0)
	n1.p.StayGreen = 5 * time.Minute
	n2 := newSkewedNode(t, st, "n2", t0)
	q := lock.Queue{Version: lock.Version}.Join("n1", t0.Add(-time.Hour)).Join("n2", t0.Add(-time.Hour))
	q.Freed = t0
	data, _ := q.Encode()
	st.Put("groups/default/queue", string(data))

	var looks int
	inside := false
	st.AfterWrite = func(int) {
		if _, holds := st.Fleet().Holders["n1"]; inside || holds {
			return
		}
		inside = true
		defer func() { inside = false }()
		// n2 looks whenever n1 writes, at n1's time.
		n2.clock.Set(n1.clock.Now())
		if _, err := n2.p.Run(ctx); !errors.Is(err, lock.ErrQueued) {
			t.Errorf("n2 at %s of n1's stay-green: %v, want it to wait for n1's turn", n1.clock.Now().Sub(t0), err)
		}
		looks++
	}
	res, err := n1.p.Run(ctx)
	st.AfterWrite = nil
	if err != nil || res.Outcome != pipeline.RebootStarted {
		t.Fatalf("n1 after staying green: %v %v", res.Outcome, err)
	}
	if want := int(n1.p.StayGreen / lock.KeepEvery); looks < want {
		t.Fatalf("n1 kept its turn %d times in %s, want every %s", looks, n1.p.StayGreen, lock.KeepEvery)
	}
}
