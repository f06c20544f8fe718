package store_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// subject is a pipeline.Store with what a test needs to set up what an operator or another node
// would write, and to see a node's maintenance; keys is its layout, and put writes a key of it.
type subject struct {
	pipeline.Store
	keys        store.Keys
	put         func(key, value string)
	has         func(key string) bool
	get         func(key string) (string, bool)
	setStop     func(value string)
	setTrigger  func(node, value string)
	setLimit    func(n int)
	maintenance func() string
}

// subjects are the in-memory store the state machine's tests run on, store.Consul on a real
// agent, and store.Consul on the in-memory model of Consul the simulator runs on: every
// contract below must hold for all three, so that what the state machine is proved against,
// and what the simulator runs, is what runs.
func subjects(t *testing.T) map[string]subject {
	fake := pipelinetest.NewStore("default", "n1")
	a := consultest.Dev(t, "n1")
	keys := store.Keys{Prefix: store.DefaultPrefix}
	put := func(key, value string) {
		if _, err := a.Client.KV().Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	model := consulmodel.New()
	model.Register("n1", nil)
	modelPut := func(key, value string) { model.Put(key, value) }
	modelHas := func(key string) bool {
		_, _, ok := model.Get(key)
		return ok
	}
	fakeHas := func(key string) bool {
		_, ok := fake.Get(key)
		return ok
	}
	get := func(key string) (string, bool) {
		p, _, err := a.Client.KV().Get(key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			return "", false
		}
		return string(p.Value), true
	}
	has := func(key string) bool {
		_, ok := get(key)
		return ok
	}
	return map[string]subject{
		"consul model": {
			Store: &store.Consul{Client: model.Client("n1", nil), Keys: keys, Logger: slog.New(slog.DiscardHandler)},
			keys:  keys,
			put:   modelPut,
			has:   modelHas,
			get: func(key string) (string, bool) {
				v, _, ok := model.Get(key)
				return v, ok
			},
			setStop:    func(v string) { modelPut(keys.Stop(), v) },
			setTrigger: func(node, v string) { modelPut(keys.RebootRequired(node), v) },
			setLimit:   func(n int) { modelPut(keys.GroupLimit(""), strconv.Itoa(n)) },
			maintenance: func() string {
				reason, _ := model.Maintenance("n1")
				return reason
			},
		},
		"in memory": {
			Store:       fake,
			keys:        pipelinetest.Layout(),
			put:         fake.Put,
			has:         fakeHas,
			get:         fake.Get,
			setStop:     func(v string) { fake.SetStop(v, true) },
			setTrigger:  func(node, v string) { fake.SetTrigger(node, v, true) },
			setLimit:    fake.SetLimit,
			maintenance: fake.Maintenance,
		},
		"consul": {
			Store:      &store.Consul{Client: a.Client, Keys: keys, Logger: slog.New(slog.DiscardHandler)},
			keys:       keys,
			put:        put,
			has:        has,
			get:        get,
			setStop:    func(v string) { put(keys.Stop(), v) },
			setTrigger: func(node, v string) { put(keys.RebootRequired(node), v) },
			setLimit:   func(n int) { put(keys.GroupLimit(""), strconv.Itoa(n)) },
			maintenance: func() string {
				checks, err := a.Client.Agent().Checks()
				if err != nil {
					t.Fatal(err)
				}
				if c, ok := checks["_node_maintenance"]; ok {
					return c.Notes
				}
				return ""
			},
		},
	}
}

// TestStoreContract: the in-memory store and store.Consul answer every sequence alike.
func TestStoreContract(t *testing.T) {
	contracts := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s subject)
	}{
		{"an empty fleet", func(t *testing.T, ctx context.Context, s subject) {
			rec, index, err := s.Lock(ctx)
			if err != nil || index != 0 || len(rec.Holders) != 0 {
				t.Fatalf("Lock: %+v %d %v", rec, index, err)
			}
			v, err := s.View(ctx)
			if err != nil || v.Stop.Set || v.Limit != lock.One || len(v.Fleet.Holders) != 0 || len(v.Lock.Holders) != 0 || len(v.Legacy) != 0 || v.Group != "default" {
				t.Fatalf("View: %+v %v", v, err)
			}
		}},
		{"a place taken and given back against one view", func(t *testing.T, ctx context.Context, s subject) {
			v, _ := s.View(ctx)
			rec, _ := v.Lock.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing}, v.Limit.Places(v.GroupNodes, true))
			fleet := v.Fleet.With("n1", v.Group)
			if ok, err := s.Commit(ctx, v, place.Change{Lock: rec, Fleet: &fleet}); !ok || err != nil {
				t.Fatalf("take: %v %v", ok, err)
			}
			other, _ := v.Lock.Acquire(lock.Holder{Node: "n2", Phase: lock.Preparing}, v.Limit.Places(v.GroupNodes, true))
			if ok, err := s.Commit(ctx, v, place.Change{Lock: other}); ok || err != nil {
				t.Fatalf("a write against a view gone stale: %v %v", ok, err)
			}
			v2, _ := s.View(ctx)
			if _, ok := v2.Lock.Holder("n1"); !ok || v2.Fleet.Holders["n1"] != "default" {
				t.Fatalf("view after the place: %+v", v2)
			}
			released := v2.Fleet.Without("n1", v2.Group)
			if ok, err := s.Commit(ctx, v2, place.Change{Lock: v2.Lock.Release("n1"), Fleet: &released}); !ok || err != nil {
				t.Fatalf("give back: %v %v", ok, err)
			}
			if rec, index, _ := s.Lock(ctx); index != 0 || len(rec.Holders) != 0 {
				t.Fatalf("an empty record was kept: %+v at %d", rec, index)
			}
			if v3, _ := s.View(ctx); len(v3.Fleet.Holders) != 0 {
				t.Fatalf("fleet's holders left: %v", v3.Fleet.Holders)
			}
		}},
		{"a limit set where none was leaves a place taken under the default", func(t *testing.T, ctx context.Context, s subject) {
			v, _ := s.View(ctx)
			s.setLimit(1)
			rec, _ := v.Lock.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing}, v.Limit.Places(v.GroupNodes, true))
			fleet := v.Fleet.With("n1", v.Group)
			if ok, err := s.Commit(ctx, v, place.Change{Lock: rec, Fleet: &fleet}); !ok || err != nil {
				t.Fatalf("a place taken under the default, every limit allowing one: %v %v", ok, err)
			}
		}},
		{"a limit lowered under a view fails the place taken on it", func(t *testing.T, ctx context.Context, s subject) {
			s.setLimit(2)
			v, _ := s.View(ctx)
			s.setLimit(1)
			rec, _ := v.Lock.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing}, v.Limit.Places(v.GroupNodes, true))
			fleet := v.Fleet.With("n1", v.Group)
			if ok, err := s.Commit(ctx, v, place.Change{Lock: rec, Fleet: &fleet}); ok || err != nil {
				t.Fatalf("a place taken on a limit since lowered: %v %v", ok, err)
			}
			v2, _ := s.View(ctx)
			if v2.Limit.N != 1 || len(v2.Lock.Holders) != 0 {
				t.Fatalf("view after the refused write: %+v", v2)
			}
			if ok, err := s.Commit(ctx, v2, place.Change{Lock: rec, Fleet: &fleet}); !ok || err != nil {
				t.Fatalf("the same place taken on a current view: %v %v", ok, err)
			}
		}},
		{"the fleet's record changed under a view", func(t *testing.T, ctx context.Context, s subject) {
			v, _ := s.View(ctx)
			fleet := v.Fleet.With("n9", "other")
			if ok, err := s.Commit(ctx, v, place.Change{Lock: v.Lock, Fleet: &fleet}); !ok || err != nil {
				t.Fatalf("another group's place: %v %v", ok, err)
			}
			mine := v.Fleet.With("n1", v.Group)
			rec, _ := v.Lock.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing}, 1)
			if ok, err := s.Commit(ctx, v, place.Change{Lock: rec, Fleet: &mine}); ok || err != nil {
				t.Fatalf("a place taken on a view that missed another group's: %v %v", ok, err)
			}
		}},
		{"stop flags and the limit in the view", func(t *testing.T, ctx context.Context, s subject) {
			s.setLimit(3)
			s.setStop("freeze")
			v, err := s.View(ctx)
			if err != nil || !v.Stop.Set || v.Stop.Value != "freeze" || v.Limit != (lock.Limit{N: 3}) {
				t.Fatalf("View: %+v %v", v, err)
			}
			if f, _ := s.Stop(ctx); f.Value != "freeze" {
				t.Fatalf("Stop: %+v", f)
			}
		}},
		{"a limit written with the lock, checked against the view", func(t *testing.T, ctx context.Context, s subject) {
			s.setLimit(1)
			v, _ := s.View(ctx)
			two := lock.Limit{N: 2}
			if ok, err := s.Commit(ctx, v, place.Change{Lock: v.Lock, Limit: &two}); !ok || err != nil {
				t.Fatalf("limit: %v %v", ok, err)
			}
			if v2, _ := s.View(ctx); v2.Limit != two {
				t.Fatalf("limit after the change: %+v", v2.Limit)
			}
			three := lock.Limit{N: 3}
			if ok, err := s.Commit(ctx, v, place.Change{Lock: v.Lock, Limit: &three}); ok || err != nil {
				t.Fatalf("a limit written on a view that missed another: %v %v", ok, err)
			}
		}},
		{"the group's stop flag is created once and says whose it is", func(t *testing.T, ctx context.Context, s subject) {
			if set, err := s.StopGroup(ctx, "first"); !set || err != nil {
				t.Fatalf("first: %v %v", set, err)
			}
			if set, err := s.StopGroup(ctx, "second"); set || err != nil {
				t.Fatalf("second: %v %v", set, err)
			}
			if f, _ := s.Stop(ctx); f.Value != "group default: first" {
				t.Fatalf("Stop: %+v", f)
			}
		}},
		{"a disabled mark is kept", func(t *testing.T, ctx context.Context, s subject) {
			if err := s.SetDisabled(ctx, "n1", "first"); err != nil {
				t.Fatal(err)
			}
			if err := s.SetDisabled(ctx, "n1", "second"); err != nil {
				t.Fatal(err)
			}
			if f, _ := s.Disabled(ctx, "n1"); f.Value != "first" {
				t.Fatalf("Disabled: %+v", f)
			}
		}},
		{"a request is deleted only as it was read", func(t *testing.T, ctx context.Context, s subject) {
			s.setTrigger("n1", "kernel")
			f, _ := s.Trigger(ctx, "n1")
			if ok, err := s.DeleteTrigger(ctx, "n1", f.Index-1); ok || err != nil {
				t.Fatalf("delete at another index: %v %v", ok, err)
			}
			if ok, err := s.DeleteTrigger(ctx, "n1", f.Index); !ok || err != nil {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if f, _ := s.Trigger(ctx, "n1"); f.Set {
				t.Fatalf("still there: %+v", f)
			}
		}},
		{"a request written again as it was keeps its index; rewritten, the next write is new", func(t *testing.T, ctx context.Context, s subject) {
			s.setTrigger("n1", "kernel")
			f, _ := s.Trigger(ctx, "n1")
			if s.setTrigger("n1", "kernel"); mustTrigger(ctx, t, s).Index != f.Index {
				t.Fatalf("written again with its value: a new index (Consul keeps it)")
			}
			if index, err := s.RewriteTrigger(ctx, "n1", f.Index+1, "x"); index != 0 || err != nil {
				t.Fatalf("rewrite at another index: %d %v", index, err)
			}
			taken, err := s.RewriteTrigger(ctx, "n1", f.Index, strings.Repeat("x", 3*clip.Max))
			if g := mustTrigger(ctx, t, s); err != nil || taken <= f.Index || g.Index != taken || len(g.Value) > clip.Max {
				t.Fatalf("rewrite: index %d (was %d), %v; now %d, %d bytes", taken, f.Index, err, g.Index, len(g.Value))
			}
			s.setTrigger("n1", "kernel")
			if ok, err := s.DeleteTrigger(ctx, "n1", taken); ok || err != nil {
				t.Fatalf("the request written again after the rewrite was deleted: %v %v", ok, err)
			}
			g := mustTrigger(ctx, t, s)
			if ok, err := s.DeleteTrigger(ctx, "n1", g.Index); !ok || err != nil {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if index, err := s.RewriteTrigger(ctx, "n1", g.Index, "x"); index != 0 || err != nil {
				t.Fatalf("rewrite of a request gone: %d %v", index, err)
			}
			if g := mustTrigger(ctx, t, s); g.Set {
				t.Fatalf("a rewrite created the request: %+v", g)
			}
		}},
		{"the history is appended to", func(t *testing.T, ctx context.Context, s subject) {
			now := time.Now().UTC().Truncate(time.Second)
			for _, n := range []string{"n1", "n2"} {
				if _, err := s.AppendHistory(ctx, history.Entry{Node: n, Start: now, End: now, Outcome: history.Finished}); err != nil {
					t.Fatal(err)
				}
			}
			l, _, err := s.History(ctx)
			if err != nil || len(l.Entries) != 2 || l.Entries[1].Node != "n2" {
				t.Fatalf("History: %+v %v", l, err)
			}
		}},
		{"maintenance: this node's, and never an operator's", func(t *testing.T, ctx context.Context, s subject) {
			if err := s.StartMaintenance(ctx, "n1", "rebooting n1"); err != nil {
				t.Fatal(err)
			}
			if m := s.maintenance(); !strings.HasPrefix(m, "rebootmgr:") {
				t.Fatalf("maintenance: %q", m)
			}
			if err := s.StartMaintenance(ctx, "n2", "x"); err == nil {
				t.Fatal("maintenance of another node's agent")
			}
			if err := s.EndMaintenance(ctx, "n1"); err != nil || s.maintenance() != "" {
				t.Fatalf("end: %v, %q", err, s.maintenance())
			}
		}},
		{"claims of room are written, read in the view, and taken away", func(t *testing.T, ctx context.Context, s subject) {
			t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			cl := lock.Claim{Node: "ctl1", AtOnce: 1, Services: []string{"quobyte"}, Seen: []string{"cmp1"}, Judged: t0, Until: t0.Add(time.Minute)}
			for _, node := range []string{"ctl1", "gw1"} {
				cl.Node = node
				if err := s.ChangeClaims(ctx, func(c lock.Claims) (lock.Claims, error) { return c.With(cl) }); err != nil {
					t.Fatal(err)
				}
			}
			v, err := s.View(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := v.Claims.Of("ctl1"); !ok || len(v.Claims.Claims) != 2 || !got.Until.Equal(cl.Until) || got.Seen[0] != "cmp1" {
				t.Fatalf("claims in the view: %+v", v.Claims)
			}
			refused := errors.New("refused")
			if err := s.ChangeClaims(ctx, func(lock.Claims) (lock.Claims, error) { return lock.Claims{}, refused }); !errors.Is(err, refused) {
				t.Fatalf("a change that fails: %v", err)
			}
			for _, node := range []string{"ctl1", "gw1"} {
				if err := s.ChangeClaims(ctx, func(c lock.Claims) (lock.Claims, error) { return c.Without(node), nil }); err != nil {
					t.Fatal(err)
				}
			}
			if v, err := s.View(ctx); err != nil || len(v.Claims.Claims) != 0 {
				t.Fatalf("claims once all were taken away: %+v, %v", v.Claims, err)
			}
		}},
		{"nodes joining the queue at once write their own asks, folded in by the next write of its record", asksContract},
		{"a fold never takes back a node that left, nor loses one that asked meanwhile", foldContract},
		{"a node that joined while a release was judged is told of the place it opens", lateJoinContract},
		{"a view of the queue's front holds its record and the reader's own ask, and is never written against", frontContract},
		{"a view read for a node holds its disabled mark", readerContract},
		{"every record is read where the layout keeps it", func(t *testing.T, ctx context.Context, s subject) {
			t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			encode := func(r interface{ Encode() ([]byte, error) }) string {
				data, err := r.Encode()
				if err != nil {
					t.Fatal(err)
				}
				return string(data)
			}
			k := s.keys
			s.put(k.GroupLock(""), encode(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "n2", Phase: lock.Rebooting, Since: t0, Updated: t0}}}))
			s.put(k.Holders(), encode(lock.Fleet{}.With("n2", "default")))
			s.put(k.GroupQueue(""), encode(lock.Queue{Version: lock.Version}.Join("n3", t0)))
			s.put(k.Claims(), encode(lock.Claims{Version: lock.Version, Claims: []lock.Claim{{Node: "n4", AtOnce: 1, Judged: t0, Until: t0.Add(time.Minute)}}}))
			s.put(k.GroupLimit(""), "2")
			s.put(k.GroupStop(""), "held")
			s.put(k.LegacyMarker(), "py-1")
			s.put(k.Disabled("n1"), "disk")
			s.put(k.RebootRequired("n1"), "kernel")
			s.put(k.GroupHistory(""), encode(history.Log{Version: 1}.Append(history.Entry{Node: "n2", Start: t0, End: t0, Outcome: history.Finished})))
			v, err := s.View(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := v.Lock.Holder("n2"); !ok || v.Fleet.Holders["n2"] != "default" || len(v.Queue.Entries) != 1 || len(v.Claims.Claims) != 1 ||
				v.Limit != (lock.Limit{N: 2}) || v.Stop.Value != "group default: held" || v.Legacy[k.LegacyMarker()] != "py-1" {
				t.Fatalf("View: %+v", v)
			}
			if rec, index, err := s.Lock(ctx); err != nil || index == 0 || len(rec.Holders) != 1 {
				t.Fatalf("Lock: %+v at %d, %v", rec, index, err)
			}
			if f, err := s.Disabled(ctx, "n1"); err != nil || f.Value != "disk" {
				t.Fatalf("Disabled: %+v, %v", f, err)
			}
			if f, err := s.Trigger(ctx, "n1"); err != nil || f.Value != "kernel" {
				t.Fatalf("Trigger: %+v, %v", f, err)
			}
			if l, _, err := s.History(ctx); err != nil || len(l.Entries) != 1 {
				t.Fatalf("History: %+v, %v", l, err)
			}
		}},
		{"a wait on the stop flags ends with its context", func(t *testing.T, _ context.Context, s subject) {
			ctx, cancel := context.WithCancelCause(context.Background())
			cause := errors.New("run over")
			cancel(cause)
			if _, err := s.WaitStop(ctx); !errors.Is(err, cause) {
				t.Fatalf("WaitStop on an ended context: %v", err)
			}
		}},
		{"a wait on the stop flags ends when one is set", func(t *testing.T, ctx context.Context, s subject) {
			got := make(chan place.Flag, 1)
			go func() {
				f, _ := s.WaitStop(ctx)
				got <- f
			}()
			s.setStop("now")
			select {
			case f := <-got:
				if !f.Set || f.Value != "now" {
					t.Fatalf("WaitStop: %+v", f)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("WaitStop did not see the stop flag")
			}
		}},
	}
	for _, c := range contracts {
		t.Run(c.name, func(t *testing.T) {
			for name, s := range subjects(t) {
				t.Run(name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					c.run(t, ctx, s)
				})
			}
		})
	}
}

// mustTrigger reads n1's reboot request.
func mustTrigger(ctx context.Context, t *testing.T, s subject) place.Flag {
	t.Helper()
	f, err := s.Trigger(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	return f
}
