package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// queueNames are the nodes of q in its order, "!" after one blocked.
func queueNames(q lock.Queue) string {
	var out []string
	for _, e := range q.Entries {
		if e.Blocked != "" {
			out = append(out, e.Node+"!")
		} else {
			out = append(out, e.Node)
		}
	}
	return strings.Join(out, " ")
}

// joined commits node's join of the queue against v (the lock left as read).
func joined(ctx context.Context, t *testing.T, s subject, v place.View, node string, now time.Time) bool {
	t.Helper()
	q := v.Queue.Join(node, now)
	ok, err := s.Commit(ctx, v, place.Change{Lock: v.Lock, Queue: &q})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func mustView(ctx context.Context, t *testing.T, s subject) place.View {
	t.Helper()
	v, err := s.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// asksContract: nodes that join on one view all join, each with its own key, in the order they
// wrote; a join judged on a lock since changed fails; a release folds the asks into the record
// (the queue reads the same) and deletes them.
func asksContract(t *testing.T, ctx context.Context, s subject) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	k := s.keys
	v := n2Rebooting(ctx, t, s, t0)
	for _, n := range []string{"n5", "n3", "n4"} {
		if !joined(ctx, t, s, v, n, t0) {
			t.Fatalf("%s's join on the view the others joined on failed", n)
		}
	}
	if s.has(k.GroupQueue("")) || !s.has(k.GroupAsk("", "n3")) {
		t.Fatalf("joins wrote the queue's record, or no ask")
	}
	v1 := mustView(ctx, t, s)
	if got := queueNames(v1.Queue); got != "n5 n3 n4" {
		t.Fatalf("queue %q, want the nodes in the order they joined", got)
	}
	if joined(ctx, t, s, v1, "n3", t0) {
		// n3 is in the queue: its join changes nothing, and is written as nothing.
		if again := mustView(ctx, t, s); queueNames(again.Queue) != "n5 n3 n4" {
			t.Fatalf("a node joining again: %q", queueNames(again.Queue))
		}
	}
	ch := place.ReleaseIn(v1, "n2", t0.Add(time.Minute))
	if ok, err := s.Commit(ctx, v1, ch); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if joined(ctx, t, s, v1, "n6", t0) {
		t.Fatal("a join judged on a lock since given back was written")
	}
	v2 := mustView(ctx, t, s)
	if got := queueNames(v2.Queue); got != "n5 n3 n4" || !v2.Queue.Freed.Equal(t0.Add(time.Minute)) {
		t.Fatalf("queue after the release %q (freed %s), want as before, freed", got, v2.Queue.Freed)
	}
	if !s.has(k.GroupQueue("")) || s.has(k.GroupAsk("", "n5")) || s.has(k.GroupAsk("", "n4")) {
		t.Fatal("the release did not fold the asks into the record")
	}
}

// foldContract: an ask written after the view a record is written on stays, behind; an ask
// deleted after it (its node left) fails the write that would fold it in.
func foldContract(t *testing.T, ctx context.Context, s subject) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	k := s.keys
	v := n2Rebooting(ctx, t, s, t0)
	joined(ctx, t, s, v, "n3", t0)
	v1 := mustView(ctx, t, s)
	joined(ctx, t, s, v1, "n4", t0)
	blocked := v1.Queue.Block("n3", "health")
	blocked.Freed = t0
	if ok, err := s.Commit(ctx, v1, place.Change{Lock: v1.Lock, Queue: &blocked}); !ok || err != nil {
		t.Fatalf("a record written beside an ask written since: %v %v", ok, err)
	}
	v2 := mustView(ctx, t, s)
	if got := queueNames(v2.Queue); got != "n3! n4" {
		t.Fatalf("queue %q, want n3 blocked, then n4", got)
	}
	left := v2.Queue.Leave("n4")
	if ok, err := s.Commit(ctx, v2, place.Change{Lock: v2.Lock, Queue: &left}); !ok || err != nil || s.has(k.GroupAsk("", "n4")) {
		t.Fatalf("n4 leaving: %v %v", ok, err)
	}
	again := v2.Queue.Join("n3", t0)
	again.Freed = t0.Add(time.Minute)
	if ok, err := s.Commit(ctx, v2, place.Change{Lock: v2.Lock, Queue: &again}); ok || err != nil {
		t.Fatalf("a write that folds in an ask deleted since: %v %v", ok, err)
	}
	if got := queueNames(mustView(ctx, t, s).Queue); got != "n3!" {
		t.Fatalf("queue %q, want n3 blocked alone", got)
	}
}

// lateJoinContract: a node joins the queue after the view a release is judged on was read, and
// before the release is written: its join, judged on the lock n2 still holds, is written, and so
// is the release, which read no ask of it. The release tells it of the place it opens all the
// same (before, neither write saw the other, and the node waited for a turn key nobody wrote).
func lateJoinContract(t *testing.T, ctx context.Context, s subject) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	turn := s.keys.GroupTurn("", "n3")
	v := n2Rebooting(ctx, t, s, t0)
	if !joined(ctx, t, s, mustView(ctx, t, s), "n3", t0) {
		t.Fatal("n3's join on the lock n2 holds failed")
	}
	if s.has(turn) {
		t.Fatal("n3 was told of a place before any opened")
	}
	if ok, err := s.Commit(ctx, v, place.ReleaseIn(v, "n2", t0.Add(time.Minute))); !ok || err != nil {
		t.Fatalf("n2's release, judged before n3 joined: %v %v", ok, err)
	}
	if value, ok := s.get(turn); !ok || !store.TurnIsPlace([]byte(value)) {
		t.Fatalf("n3's turn key after the release: %q (%v), want it told of the place", value, ok)
	}
	if got := queueNames(mustView(ctx, t, s).Queue); got != "n3" {
		t.Fatalf("queue after the release %q, want n3", got)
	}
}

// n2Rebooting gives n2 the default group's one place, rebooting since t0, and reads the view
// the contracts start from.
func n2Rebooting(ctx context.Context, t *testing.T, s subject, t0 time.Time) place.View {
	t.Helper()
	rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "n2", Phase: lock.Rebooting, Since: t0, Updated: t0}, 1)
	data, _ := rec.Encode()
	s.put(s.keys.GroupLock(""), string(data))
	return mustView(ctx, t, s)
}

// frontContract: a View of the queue's front (place.FrontOnly) holds the queue's record and the
// reader's own ask, never the other asks, says it is partial, and is never committed against.
func frontContract(t *testing.T, ctx context.Context, s subject) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	v := n2Rebooting(ctx, t, s, t0)
	joined(ctx, t, s, v, "n3", t0)
	joined(ctx, t, s, v, "n4", t0)
	v1 := mustView(ctx, t, s)
	if ok, err := s.Commit(ctx, v1, place.ReleaseIn(v1, "n2", t0.Add(time.Minute))); !ok || err != nil {
		t.Fatalf("release, folding n3 and n4 into the record: %v %v", ok, err)
	}
	joined(ctx, t, s, mustView(ctx, t, s), "n5", t0)
	tests := []struct {
		node, want string
	}{
		{"n5", "n3 n4 n5"},
		{"n4", "n3 n4"},
		{"n9", "n3 n4"},
	}
	whole := mustView(ctx, t, s)
	if queueNames(whole.Queue) != "n3 n4 n5" || whole.Partial {
		t.Fatalf("the whole queue %q (partial %v), want every node, whole", queueNames(whole.Queue), whole.Partial)
	}
	for _, tt := range tests {
		front, err := s.View(place.FrontOnly(ctx, tt.node))
		if err != nil {
			t.Fatal(err)
		}
		if got := queueNames(front.Queue); got != tt.want || !front.Partial {
			t.Errorf("%s's front: queue %q (partial %v), want %q, partial", tt.node, got, front.Partial, tt.want)
		}
		if !front.Queue.Freed.Equal(whole.Queue.Freed) || len(front.Lock.Holders) != len(whole.Lock.Holders) {
			t.Errorf("%s's front: freed %s, %d holders; the whole view's: %s, %d", tt.node, front.Queue.Freed, len(front.Lock.Holders), whole.Queue.Freed, len(whole.Lock.Holders))
		}
		left := front.Queue.Leave(tt.node)
		if ok, err := s.Commit(ctx, front, place.Change{Lock: front.Lock, Queue: &left}); ok || !errors.Is(err, place.ErrPartial) {
			t.Errorf("a write against %s's front: %v %v, want refused with place.ErrPartial", tt.node, ok, err)
		}
	}
}

// readerContract: a View read for a node (place.ForNode) holds that node's disabled mark, read
// with the rest; a View read for nobody holds none.
func readerContract(t *testing.T, ctx context.Context, s subject) {
	s.put(s.keys.Disabled("n1"), "by ops")
	tests := []struct {
		ctx  context.Context
		want place.Flag
	}{
		{place.ForNode(ctx, "n1"), place.Flag{Set: true, Value: "by ops"}},
		{place.ForNode(ctx, "n2"), place.Flag{}},
		{ctx, place.Flag{}},
	}
	for i, tt := range tests {
		v, err := s.View(tt.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Disabled.Set != tt.want.Set || v.Disabled.Value != tt.want.Value {
			t.Errorf("view %d: disabled %+v, want %+v", i, v.Disabled, tt.want)
		}
	}
}
