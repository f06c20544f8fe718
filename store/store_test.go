package store

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
)

func newStore(t *testing.T) (*Consul, *consultest.Agent) {
	t.Helper()
	a := consultest.Dev(t, "n1")
	return &Consul{Client: a.Client, Keys: Keys{Prefix: DefaultPrefix}, Logger: slog.New(slog.DiscardHandler)}, a
}

func TestLockCheckAndSet(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	rec, index, err := s.Lock(ctx)
	if err != nil || index != 0 || len(rec.Holders) != 0 {
		t.Fatalf("empty lock: %+v %d %v", rec, index, err)
	}
	n1, _ := rec.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing}, 1)
	n2, _ := rec.Acquire(lock.Holder{Node: "n2", Phase: lock.Preparing}, 1)
	if ok, err := s.CASLock(ctx, n1, 0); !ok || err != nil {
		t.Fatalf("first write: %v %v", ok, err)
	}
	if ok, err := s.CASLock(ctx, n2, 0); ok || err != nil {
		t.Fatalf("a second create over an existing record: %v %v", ok, err)
	}
	got, index, err := s.Lock(ctx)
	if err != nil || got.Holders[0].Node != "n1" {
		t.Fatalf("lock: %+v %v", got, err)
	}
	if ok, _ := s.CASLock(ctx, n2, index-1); ok {
		t.Fatal("a write at a stale index succeeded")
	}
	released := got.Release("n1")
	if ok, err := s.CASLock(ctx, released, index); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if pair, _, _ := s.Client.KV().Get(s.Keys.Lock(), nil); pair != nil {
		t.Fatalf("an empty lock record was kept: %s", pair.Value)
	}
}

func TestWaitStop(t *testing.T) {
	s, a := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		f, err := s.WaitStop(ctx)
		if err == nil && (!f.Set || f.Value != "") {
			t.Errorf("WaitStop returned %+v", f)
		}
		got <- err
	}()
	// Unrelated writes do not end the wait.
	if _, err := a.Client.KV().Put(&api.KVPair{Key: DefaultPrefix + "/n1/reboot_required"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		t.Fatalf("WaitStop returned before the stop flag existed: %v", err)
	default:
	}
	if _, err := a.Client.KV().Put(&api.KVPair{Key: s.Keys.Stop()}, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestDeleteTriggerOnlyIfUnchanged(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	key := s.Keys.RebootRequired("n1")
	a.Client.KV().Put(&api.KVPair{Key: key, Value: []byte("kernel")}, nil)
	f, _ := s.Trigger(ctx, "n1")
	a.Client.KV().Put(&api.KVPair{Key: key, Value: []byte("kernel again")}, nil)
	if ok, err := s.DeleteTrigger(ctx, "n1", f.Index); ok || err != nil {
		t.Fatalf("deleted a request made after the index: %v %v", ok, err)
	}
	f, _ = s.Trigger(ctx, "n1")
	if ok, err := s.DeleteTrigger(ctx, "n1", f.Index); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
}

func TestSetDisabledKeepsAnExistingReason(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.SetDisabled(ctx, "n1", "operator: disk swap"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, "n1", "task failed"); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.Disabled(ctx, "n1"); f.Value != "operator: disk swap" {
		t.Fatalf("reason overwritten: %q", f.Value)
	}
}

func TestMaintenance(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	inMaintenance := func() bool {
		checks, err := a.Client.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		_, ok := checks["_node_maintenance"]
		return ok
	}
	if err := s.StartMaintenance(ctx, "n1", "rebootmgr: rebooting n1"); err != nil {
		t.Fatal(err)
	}
	if !inMaintenance() {
		t.Fatal("not in maintenance")
	}
	if err := s.EndMaintenance(ctx, "n1"); err != nil || inMaintenance() {
		t.Fatalf("own maintenance not ended: %v", err)
	}

	// An operator's maintenance is never ended by rebootmgr.
	if err := a.Client.Agent().EnableNodeMaintenance("replacing a fan"); err != nil {
		t.Fatal(err)
	}
	if err := s.EndMaintenance(ctx, "n1"); err != nil || !inMaintenance() {
		t.Fatalf("an operator's maintenance was ended: %v", err)
	}
	if err := s.StartMaintenance(ctx, "n9", "x"); err == nil {
		t.Fatal("maintenance of another node's agent accepted")
	}
}

func TestOperatorsMaintenanceIsKept(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	if err := a.Client.Agent().EnableNodeMaintenance("replacing a fan"); err != nil {
		t.Fatal(err)
	}
	if err := s.StartMaintenance(ctx, "n1", "rebootmgr: rebooting n1"); err != nil {
		t.Fatal(err)
	}
	if err := s.EndMaintenance(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	checks, err := a.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := checks["_node_maintenance"]; !ok || m.Notes != "replacing a fan" {
		t.Fatalf("operator's maintenance changed: %+v", m)
	}
}

// TestConcurrentChangeIsAConflict: an operator's delete of a key someone changed after it was
// read fails and writes nothing; so does an unlock of a lock record that changed.
func TestConcurrentChangeIsAConflict(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	key := s.Keys.Disabled("n1")
	if _, err := s.Create(ctx, key, "disk swap"); err != nil {
		t.Fatal(err)
	}
	read, _ := s.Flag(ctx, key)
	a.Client.KV().Put(&api.KVPair{Key: key, Value: []byte("disk swap, and the fan too")}, nil)
	if err := s.RemoveAt(ctx, key, read.Index); !errors.Is(err, ErrConflict) {
		t.Fatalf("RemoveAt after a change: %v", err)
	}
	if f, _ := s.Flag(ctx, key); f.Value != "disk swap, and the fan too" {
		t.Fatalf("the newer value was lost: %q", f.Value)
	}
	if _, err := s.Create(ctx, key, "other"); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over an existing key: %v", err)
	}
}

// TestRememberAfterForget: a node forgotten while it was gone from the catalog is remembered
// again when it comes back, by a store that remembered it before (the daemon's, which lives
// on while an operator forgets the node from another process), even when the store's watch
// could not see it go.
func TestRememberAfterForget(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	exists := func(node string) bool {
		t.Helper()
		pair, _, err := s.Client.KV().Get(s.Keys.Member("cassandra", node), nil)
		if err != nil {
			t.Fatal(err)
		}
		return pair != nil
	}
	if err := s.Remember(ctx, "cassandra", []string{"n1", "n2"}); err != nil || !exists("n1") || !exists("n2") {
		t.Fatalf("remember n1, n2: %v", err)
	}
	// n2 leaves the catalog; the health watch now sees n1 alone.
	if err := s.Remember(ctx, "cassandra", []string{"n1"}); err != nil {
		t.Fatal(err)
	}
	operator := &Consul{Client: s.Client, Keys: s.Keys}
	if forgotten, err := operator.Forget(ctx, "n2", "cassandra"); err != nil || len(forgotten) != 1 || exists("n2") {
		t.Fatalf("forget n2: %v %v", forgotten, err)
	}
	// n2 comes back.
	if err := s.Remember(ctx, "cassandra", []string{"n1", "n2"}); err != nil {
		t.Fatal(err)
	}
	if !exists("n2") {
		t.Fatal("n2 came back into the catalog but was not remembered again")
	}

	// The watch loses sight of the service (its agent restarts) while n2 leaves, is forgotten
	// and comes back: it hears nothing, then n1 and n2 again.
	if err := s.Remember(ctx, "cassandra", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := operator.Forget(ctx, "n2", "cassandra"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(ctx, "cassandra", []string{"n1", "n2"}); err != nil {
		t.Fatal(err)
	}
	if !exists("n2") {
		t.Fatal("n2, forgotten while the watch could not see, was not remembered again")
	}
}
