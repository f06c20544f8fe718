package consulmodel_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
)

// TestGateRefusesAndNothingChanges: a refused call is answered with the refusal, changes
// nothing, and is counted as refused.
func TestGateRefusesAndNothingChanges(t *testing.T) {
	for _, status := range []int{403, 413, 429, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			m := consulmodel.New()
			var seen []string
			gate := func(_ context.Context, c *consulmodel.Call) *consulmodel.Refusal {
				seen = append(seen, fmt.Sprint(c.Method, " ", c.Path, " write=", c.Write))
				if c.Write {
					return &consulmodel.Refusal{Status: status, Body: "refused"}
				}
				return nil
			}
			kv := m.Client("n1", gate).KV()
			_, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil)
			if se, ok := err.(api.StatusError); !ok || se.Code != status || se.Body != "refused" {
				t.Fatalf("put: %v", err)
			}
			if p, _, err := kv.Get("k", nil); p != nil || err != nil {
				t.Fatalf("get after a refused put: %v %v", p, err)
			}
			if m.Index() != 0 {
				t.Fatalf("index %d after a refused write", m.Index())
			}
			want := []string{"PUT /v1/kv/k write=true", "GET /v1/kv/k write=false"}
			if !slices.Equal(seen, want) {
				t.Fatalf("gate saw %q", seen)
			}
			s := m.Stats()
			if s.Total.Requests != 2 || s.Total.Refused != 1 || s.Total.Writes != 0 || s.Total.BytesIn != 1 || len(s.Nodes) != 1 || s.Nodes[0].Node != "n1" {
				t.Fatalf("stats: %+v", s)
			}
		})
	}
}

// timers is an After whose timers the test fires, and that says when a query starts to wait.
type timers struct {
	started chan time.Duration
	fire    chan time.Time
}

func (tm *timers) after(d time.Duration) <-chan time.Time {
	tm.started <- d
	return tm.fire
}

// TestBlockingQuery: a blocking query waits in the model until a change passes its index or its
// timer fires; Waiting counts it until then, and the gate sees it again, woken, before it is
// answered.
func TestBlockingQuery(t *testing.T) {
	cases := []struct {
		name  string
		wake  func(m *consulmodel.Model, tm *timers)
		value string
		later bool
	}{
		{"a change", func(m *consulmodel.Model, _ *timers) { m.Put("k", "2") }, "2", true},
		{"a change of another key does not wake it", func(m *consulmodel.Model, tm *timers) {
			m.Put("other", "x")
			if m.Waiting() != 1 {
				t.Errorf("woken by another key")
			}
			tm.fire <- time.Time{}
		}, "1", false},
		{"the wait passes", func(_ *consulmodel.Model, tm *timers) { tm.fire <- time.Time{} }, "1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := consulmodel.New()
			tm := &timers{started: make(chan time.Duration, 1), fire: make(chan time.Time, 1)}
			m.After = tm.after
			var mu sync.Mutex
			var woken []bool
			gate := func(_ context.Context, call *consulmodel.Call) *consulmodel.Refusal {
				mu.Lock()
				defer mu.Unlock()
				woken = append(woken, call.Woken)
				return nil
			}
			m.Put("k", "1")
			_, index, _ := m.Get("k")
			type result struct {
				p     *api.KVPair
				index uint64
				err   error
			}
			got := make(chan result, 1)
			go func() {
				p, meta, err := m.Client("n1", gate).KV().Get("k", &api.QueryOptions{WaitIndex: index, WaitTime: time.Minute})
				got <- result{p, meta.LastIndex, err}
			}()
			if d := <-tm.started; d != time.Minute {
				t.Fatalf("waits %s", d)
			}
			if m.Waiting() != 1 {
				t.Fatalf("waiting: %d", m.Waiting())
			}
			c.wake(m, tm)
			r := <-got
			if r.err != nil || string(r.p.Value) != c.value || (r.index > index) != c.later {
				t.Fatalf("answer: %+v", r)
			}
			if m.Waiting() != 0 || !slices.Equal(woken, []bool{false, true}) {
				t.Fatalf("waiting %d, gate saw woken %v", m.Waiting(), woken)
			}
		})
	}
}

// TestOnWrite: every change is told, with its keys sorted, and "" for the catalog's; a write
// that changes nothing is not.
func TestOnWrite(t *testing.T) {
	m := consulmodel.New()
	var got []string
	m.OnWrite = func(keys []string) { got = append(got, strings.Join(keys, ",")) }
	m.Register("n1", nil)
	c := m.Client("n1", nil)
	c.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "b", Value: []byte("1")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "a", Value: []byte("1")}},
	}, nil)
	c.KV().Put(&api.KVPair{Key: "a", Value: []byte("1")}, nil)
	c.Agent().EnableNodeMaintenance("x")
	m.Fail("n1")
	want := []string{"", "a,b", "", ""}
	if !slices.Equal(got, want) {
		t.Fatalf("OnWrite: %q", got)
	}
}

// TestScale: a fleet of 10,000 nodes with a key each is listed and written without reading the
// whole world per request, and a write wakes only the queries on what it changed.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale")
	}
	m := consulmodel.New()
	const nodes = 10000
	for i := range nodes {
		n := fmt.Sprintf("node-%05d", i)
		m.Register(n, map[string]string{"rebootmgr-group": fmt.Sprint("g", i%10)})
		m.AddService(n, "web", "web", []string{"rebootmgr"}, 80)
		m.Put("rebootmgr/turns/"+n, "x")
	}
	c := m.Client("node-00000", nil)
	start := time.Now()
	for i := range 1000 {
		if _, _, err := c.KV().List(fmt.Sprintf("rebootmgr/turns/node-%05d", i*10), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.KV().Put(&api.KVPair{Key: fmt.Sprint("rebootmgr/x/", i), Value: []byte("v")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("2,000 requests on 10,000 nodes took %s", d)
	}
	nodesOf, _, err := c.Catalog().Nodes(&api.QueryOptions{NodeMeta: map[string]string{"rebootmgr-group": "g3"}})
	if err != nil || len(nodesOf) != nodes/10 {
		t.Fatalf("nodes of g3: %d %v", len(nodesOf), err)
	}
}
