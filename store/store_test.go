package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

func newStore(t *testing.T) (*Consul, *consultest.Agent) {
	t.Helper()
	a := consultest.Dev(t, "n1")
	return &Consul{Client: a.Client, Keys: Keys{Prefix: DefaultPrefix}, Logger: slog.New(slog.DiscardHandler)}, a
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

// TestLongTextIsCut: a reason or a request's text far beyond what Consul takes in one value is
// written cut, and the write succeeds.
func TestLongTextIsCut(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	huge := "pre-boot task failed: " + strings.Repeat("ü", 300<<10) // 600 kB
	tests := []struct {
		name  string
		write func() error
		read  func() (string, error)
	}{
		{
			name:  "disabled mark",
			write: func() error { return s.SetDisabled(ctx, "n1", huge) },
			read: func() (string, error) {
				f, err := s.Disabled(ctx, "n1")
				return f.Value, err
			},
		},
		{
			name: "group stop flag",
			write: func() error {
				if ok, err := s.StopGroup(ctx, huge); !ok {
					return fmt.Errorf("not set: %w", err)
				}
				return nil
			},
			read: func() (string, error) {
				f, err := s.Flag(ctx, s.Keys.GroupStop(""))
				return f.Value, err
			},
		},
		{
			name: "triggered_by in the lock",
			write: func() error {
				rec, _ := lock.Record{}.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing, TriggeredBy: "key reboot_required: " + huge}, 1)
				v, err := s.View(ctx)
				if err != nil {
					return err
				}
				if ok, err := s.Commit(ctx, v, place.Change{Lock: rec}); !ok {
					return fmt.Errorf("not written: %w", err)
				}
				return nil
			},
			read: func() (string, error) {
				pair, _, err := s.Client.KV().Get(s.Keys.Lock(), nil)
				if err != nil || pair == nil {
					return "", fmt.Errorf("read the lock: %v", err)
				}
				if len(pair.Value) > 2*clip.Max {
					return "", fmt.Errorf("lock record of %d bytes", len(pair.Value))
				}
				rec, err := lock.Decode(pair.Value)
				if err != nil {
					return "", err
				}
				return rec.Holders[0].TriggeredBy, nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(); err != nil {
				t.Fatalf("write: %v", err)
			}
			got, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > clip.Max || !strings.HasSuffix(got, clip.Marker) || !utf8.ValidString(got) {
				t.Fatalf("stored %d bytes, ending %q", len(got), got[max(0, len(got)-20):])
			}
		})
	}
}

// TestHistoryStaysWritable: a history already too large (written by hand, or by an older
// rebootmgr) is trimmed by the next append, and appends of long details never make it grow
// past history.MaxBytes.
func TestHistoryStaysWritable(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	seed, err := history.Log{Entries: []history.Entry{
		{Node: "n0", End: t0, Outcome: history.TaskFailed, Detail: strings.Repeat("x", 500<<10)},
	}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	key := s.Keys.GroupHistory("")
	if _, err := a.Client.KV().Put(&api.KVPair{Key: key, Value: seed}, nil); err != nil {
		t.Fatalf("seed a %d-byte history: %v", len(seed), err)
	}
	stored := func() int {
		pair, _, err := a.Client.KV().Get(key, nil)
		if err != nil || pair == nil {
			t.Fatalf("read the history: %v", err)
		}
		return len(pair.Value)
	}
	long := strings.Repeat("output ", 100<<10)
	for i := range 40 {
		e := history.Entry{Node: fmt.Sprintf("n%d", i+1), End: t0.Add(time.Duration(i+1) * time.Minute), Outcome: history.TaskFailed, Detail: long, TriggeredBy: long}
		l, err := s.AppendHistory(ctx, e)
		if err != nil {
			t.Fatalf("append %d: %v", i+1, err)
		}
		if n := stored(); n > history.MaxBytes {
			t.Fatalf("after append %d the history is %d bytes", i+1, n)
		}
		if l.Entries[0].Node == "n0" {
			t.Fatal("the oversized entry was kept")
		}
		if last := l.Entries[len(l.Entries)-1]; last.Node != e.Node || !strings.HasSuffix(last.Detail, clip.Marker) {
			t.Fatalf("append %d: last entry %s, detail of %d bytes", i+1, last.Node, len(last.Detail))
		}
	}
	back, _, err := s.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Entries) >= 40 || back.Entries[len(back.Entries)-1].Node != "n40" {
		t.Fatalf("history of %d entries, newest %s: not bounded by its size", len(back.Entries), back.Entries[len(back.Entries)-1].Node)
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

// TestClaimsTooLargeToWrite: a claim whose record would pass what Consul takes in one
// transaction (512 kB, the value in base64: some 380 kB of record) is refused with an error
// that names the key, and the claims written before it stay as they were; a record of 300 kB is
// written and read with the View.
func TestClaimsTooLargeToWrite(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	small := lock.Claim{Node: "ctl1", AtOnce: 1, Services: []string{"quobyte"}, Seen: []string{"cmp1"}, Judged: now, Until: now.Add(time.Minute)}
	if err := s.ChangeClaims(ctx, func(c lock.Claims) (lock.Claims, error) { return c.With(small) }); err != nil {
		t.Fatal(err)
	}
	seen := func(kB int) []string {
		var out []string
		for i := range kB << 10 / 16 {
			out = append(out, fmt.Sprintf("node-%09d", i))
		}
		return out
	}
	huge := small
	huge.Node, huge.Seen = "ctl2", seen(600)
	err := s.ChangeClaims(ctx, func(c lock.Claims) (lock.Claims, error) { return c.With(huge) })
	if err == nil || !strings.Contains(err.Error(), s.Keys.Claims()) {
		t.Fatalf("a claims record over 512 kB: %v", err)
	}
	v, err := s.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Claims.Of("ctl1"); !ok || len(v.Claims.Claims) != 1 {
		t.Fatalf("claims after a refused write: %+v", v.Claims)
	}
	large := small
	large.Node, large.Seen = "ctl3", seen(300)
	if err := s.ChangeClaims(ctx, func(c lock.Claims) (lock.Claims, error) { return c.With(large) }); err != nil {
		t.Fatalf("a claims record under 512 kB: %v", err)
	}
	if v, err := s.View(ctx); err != nil || len(v.Claims.Claims) != 2 {
		t.Fatalf("a large claims record in the View: %d claims, %v", len(v.Claims.Claims), err)
	}
}

// TestViewZonesFromTheCatalog: a group bounded per zone has the zones of its nodes in its View,
// read from the catalog's node meta (the queue record keeps none: rebootmgr 0.1.0 reads it), and
// the entry a node joins the queue with (its ask, folded into the record later) is written
// without one.
func TestViewZonesFromTheCatalog(t *testing.T) {
	s, a := newStore(t)
	s = s.ForGroup("compute")
	ctx := context.Background()
	for node, zone := range map[string]string{"c1": "rack-1", "c2": "rack-2", "c3": ""} {
		meta := map[string]string{GroupMeta: "compute"}
		if zone != "" {
			meta[ZoneMeta] = zone
		}
		if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: node, Address: "127.0.0.1", NodeMeta: meta}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "w1", Address: "127.0.0.1", NodeMeta: map[string]string{ZoneMeta: "rack-1"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client.KV().Put(&api.KVPair{Key: s.Keys.GroupLimit("compute"), Value: []byte("2 per-zone=1")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := place.ChangeQueue(ctx, s, s.Logger, func(q lock.Queue) lock.Queue { return q.Join("c1", time.Now()) }); err != nil {
		t.Fatal(err)
	}
	v, err := s.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"c1": "rack-1", "c2": "rack-2"}
	if len(v.Zones) != len(want) || v.Zones["c1"] != "rack-1" || v.Zones["c2"] != "rack-2" {
		t.Fatalf("zones %v, want %v (the group's nodes that name one, no other group's)", v.Zones, want)
	}
	pair, _, err := a.Client.KV().Get(s.Keys.GroupAsk("compute", "c1"), nil)
	if err != nil || pair == nil {
		t.Fatalf("c1's ask: %v %v", pair, err)
	}
	if strings.Contains(string(pair.Value), "zone") {
		t.Fatalf("the queue's entry names a zone, which rebootmgr 0.1.0 refuses once folded into the record: %s", pair.Value)
	}
	// A limit not bounded per zone reads no zones.
	if _, err := a.Client.KV().Put(&api.KVPair{Key: s.Keys.GroupLimit("compute"), Value: []byte("2")}, nil); err != nil {
		t.Fatal(err)
	}
	if v, err = s.View(ctx); err != nil || v.Zones != nil {
		t.Fatalf("zones %v (%v), want none without a zone bound", v.Zones, err)
	}
}

// TestForGroup: a store of another group is a new store with all else of the first; the first
// stays of its own group.
func TestForGroup(t *testing.T) {
	back := func() backoff.BackOff { return &backoff.ZeroBackOff{} }
	base := &Consul{Keys: Keys{Prefix: DefaultPrefix}, Options: api.QueryOptions{Datacenter: "dc2"}, Logger: slog.New(slog.DiscardHandler), PythonMarkers: true, NewBackOff: back}
	g := base.ForGroup("compute")
	if g == base || base.Group != "" || g.Group != "compute" {
		t.Fatalf("ForGroup: %p %+v from %p %+v", g, g, base, base)
	}
	if g.Keys != base.Keys || g.Options.Datacenter != "dc2" || g.Logger != base.Logger || !g.PythonMarkers || g.NewBackOff == nil {
		t.Fatalf("ForGroup lost what the store had: %+v", g)
	}
}
