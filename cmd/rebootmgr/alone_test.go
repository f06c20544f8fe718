package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// The tags of a service with a rule over the fleet, and of one that counts the node's own
// instance only (the shipped dkms check).
var (
	novaTags = []string{"rebootmgr", "max_failing=3"}
	dkmsTags = []string{"rebootmgr", "local_only"}
)

// runs registers on n the service its tags say (nil: none), passing.
func (n *testNode) runs(tags []string) {
	n.t.Helper()
	switch {
	case tags == nil:
	case slices.Contains(tags, "local_only"):
		n.agent.RegisterService("dkms", tags, "passing")
	default:
		n.agent.RegisterService("nova-compute", tags, "passing")
	}
}

// lockStates hands see every state group's lock is ever in, in the order they were written:
// each node's rebootmgr talks to its agent through a proxy (the addresses returned, in the
// nodes' order), and every change of the lock is a transaction (see store.Consul.Commit) whose
// record the proxy reads from the request once Consul has applied it.
func lockStates(t *testing.T, nodes []*testNode, group string, see func(lock.Record)) []string {
	t.Helper()
	key := nodes[0].keys().GroupLock(group)
	var mu sync.Mutex
	var addrs []string
	for _, n := range nodes {
		target, _ := url.Parse("http://" + n.agent.HTTPAddr)
		rp := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPut || r.URL.Path != "/v1/txn" {
				rp.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			// The transactions of one lock are applied one at a time: the lock's states reach see
			// in their order.
			mu.Lock()
			defer mu.Unlock()
			sw := &statusWriter{ResponseWriter: w}
			rp.ServeHTTP(sw, r)
			if sw.code != 0 && sw.code != http.StatusOK {
				return
			}
			if rec, ok := txnLock(t, body, key); ok {
				see(rec)
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(srv.CloseClientConnections)
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	return addrs
}

// txnLock is the record a transaction's body writes at key, if it writes it (a delete leaves
// the lock empty).
func txnLock(t *testing.T, body []byte, key string) (lock.Record, bool) {
	var ops []struct {
		KV *struct {
			Verb, Key string
			Value     []byte
		}
	}
	if err := json.Unmarshal(body, &ops); err != nil {
		t.Errorf("a transaction the monitor cannot read: %v", err)
		return lock.Record{}, false
	}
	for _, op := range ops {
		if op.KV == nil || op.KV.Key != key {
			continue
		}
		switch op.KV.Verb {
		case "set", "cas":
			rec, err := lock.Decode(op.KV.Value)
			if err != nil {
				t.Errorf("the lock written: %v", err)
			}
			return rec, true
		case "delete", "delete-cas":
			return lock.Record{Version: lock.Version}, true
		}
	}
	return lock.Record{}, false
}

// statusWriter keeps the status of a response.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// aloneMonitor holds every state of a lock against the rule that some nodes (alone: under auto,
// those with no rule over the fleet; under a limit per zone, those of no zone) hold a place only
// alone.
type aloneMonitor struct {
	mu         sync.Mutex
	alone      map[string]bool
	states     int
	most       int // the most holders seen at once
	violations []string
}

func (m *aloneMonitor) see(rec lock.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states++
	m.most = max(m.most, len(rec.Holders))
	for _, h := range rec.Holders {
		if m.alone[h.Node] && len(rec.Holders) > 1 {
			m.violations = append(m.violations, fmt.Sprintf("%s beside others: %s", h.Node, holderNames(rec)))
		}
	}
}

func (m *aloneMonitor) check(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Logf("the monitor saw %d states of the lock, at most %d holders at once", m.states, m.most)
	if len(m.violations) > 0 {
		t.Fatalf("a node that reboots alone held a place beside others:\n%s", strings.Join(m.violations, "\n"))
	}
}

func holderNames(rec lock.Record) string {
	var out []string
	for _, h := range rec.Holders {
		out = append(out, h.Node+" ("+string(h.Phase)+")")
	}
	return strings.Join(out, ", ")
}

// TestAloneUnderAuto: under a limit of auto, a node with no rule over the fleet (no service
// tagged rebootmgr, or only local_only ones) reboots alone, both ways: while it prepares (its
// pre-boot task holds it there), the next node triggered, ruled or not, does not take a place
// beside it; it waits, and check says why; it goes once the first has finished. Daemons on
// their own agents; a monitor sees every state of the lock.
func TestAloneUnderAuto(t *testing.T) {
	for _, tt := range []struct {
		name        string
		first, next []string // the tags of the service each runs (nil: none)
		says        []string // what check says of the next node
	}{
		{"the first runs no tagged service", nil, novaTags, []string{"n00 holds a place and runs no service with a rule over the fleet"}},
		{"the first runs only local_only services", dkmsTags, novaTags, []string{"n00 holds a place and runs no service with a rule over the fleet"}},
		{"both run only local_only services", dkmsTags, dkmsTags, []string{"reboots only alone", "this node reboots alone, nobody beside it: the limit is auto and it runs no service with a rule over the fleet"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nodes := cluster(t, []string{"compute", "compute"})
			first, next := nodes[0], nodes[1]
			first.expect(first.run("limit", "compute", "auto"), 0)
			first.runs(tt.first)
			next.runs(tt.next)
			m := &aloneMonitor{alone: map[string]bool{first.agent.Node: true}}
			if slices.Contains(tt.next, "local_only") {
				m.alone[next.agent.Node] = true
			}
			addrs := lockStates(t, nodes, "compute", m.see)
			started, gate := filepath.Join(first.dir, "started"), filepath.Join(first.dir, "go")
			first.task("pre", "10-drain", fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done", started, gate))
			daemons := []*daemonRun{first.startDaemon("--consul-addr", addrs[0]), next.startDaemon("--consul-addr", addrs[1])}

			first.put(first.keys().RebootRequired(first.agent.Node), "")
			waitFile(t, started)
			next.put(next.keys().RebootRequired(next.agent.Node), "")
			waitLockAndQueue(t, first, "compute", func(rec lock.Record, q lock.Queue) bool {
				_, holds := rec.Holder(next.agent.Node)
				_, queued := q.Place(next.agent.Node)
				return holds || queued
			})
			if rec := lockAt(t, first, "compute"); len(rec.Holders) != 1 {
				t.Fatalf("while %s prepares, the lock holds %s", first.agent.Node, holderNames(rec))
			}
			next.expect(next.run("check"), exitLockHeld, tt.says...)

			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			finished := map[int]bool{}
			for i, n := range nodes {
				if got := waitRebootCount(t, nodes, finished, 1); got != i {
					t.Fatalf("%s rebooted before %s", nodes[got].agent.Node, n.agent.Node)
				}
				daemons[i].stop()
				n.boot()
				d := n.startDaemon("--consul-addr", addrs[i])
				fleettest.WaitSeen(t, d.Log.Seen("idle: reboot finished"), "the post-boot part of "+n.agent.Node)
				finished[i] = true
			}
			m.check(t)
			for _, n := range nodes {
				if got := n.rebootCount(); got != 1 {
					t.Fatalf("%s rebooted %d times", n.agent.Node, got)
				}
			}
		})
	}
}

// TestAloneRaceUnderAuto: nodes of one group at auto, with and without rules over the fleet,
// triggered at the same instant, round after round, each reboot a pre-boot task long: a
// monitor that sees every state of the lock never sees a node without rules beside another
// holder, and every node reboots in every round.
func TestAloneRaceUnderAuto(t *testing.T) {
	tags := [][]string{nil, dkmsTags, novaTags, novaTags, novaTags}
	groups := make([]string, len(tags))
	for i := range groups {
		groups[i] = "compute"
	}
	nodes := cluster(t, groups)
	nodes[0].expect(nodes[0].run("limit", "compute", "auto"), 0)
	m := &aloneMonitor{alone: map[string]bool{}}
	for i, n := range nodes {
		n.runs(tags[i])
		if !slices.Contains(tags[i], "max_failing=3") {
			m.alone[n.agent.Node] = true
		}
		n.task("pre", "10-drain", "sleep 0.5")
	}
	addrs := lockStates(t, nodes, "compute", m.see)
	daemons := make([]*daemonRun, len(nodes))
	for i, n := range nodes {
		daemons[i] = n.startDaemon("--consul-addr", addrs[i])
	}
	const rounds = 2
	for round := 1; round <= rounds; round++ {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.put(n.keys().RebootRequired(n.agent.Node), "") }()
		}
		wg.Wait()
		finished := map[int]bool{}
		for len(finished) < len(nodes) {
			i := waitRebootCount(t, nodes, finished, round)
			daemons[i].stop()
			nodes[i].boot()
			daemons[i] = nodes[i].startDaemon("--consul-addr", addrs[i])
			fleettest.WaitSeen(t, daemons[i].Log.Seen("idle: reboot finished"), "the post-boot part of "+nodes[i].agent.Node)
			finished[i] = true
		}
	}
	m.check(t)
}

// waitRebootCount waits until a node not yet finished has run its reboot command count times
// (the command has written its line: the file alone may be there a moment before).
func waitRebootCount(t *testing.T, nodes []*testNode, finished map[int]bool, count int) int {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range nodes {
			if !finished[i] && n.rebootCount() >= count {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no node rebooted a %d. time", count)
	return -1
}

// waitLockAndQueue waits, with blocking queries, until group's lock and queue satisfy ok.
func waitLockAndQueue(t *testing.T, n *testNode, group string, ok func(lock.Record, lock.Queue) bool) {
	t.Helper()
	lockKey, queueKey := n.keys().GroupLock(group), n.keys().GroupQueue(group)
	prefix := strings.TrimSuffix(lockKey, "lock")
	waitUntil(t, 30*time.Second, func() string {
		return fmt.Sprintf("group %s never as wanted: lock %s", group, holderNames(lockAt(t, n, group)))
	}, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		pairs, meta, err := n.kv().List(prefix, q)
		if err != nil {
			return false, meta, err
		}
		rec := lock.Record{Version: lock.Version}
		var record *api.KVPair
		for _, p := range pairs {
			switch p.Key {
			case lockKey:
				if rec, err = lock.Decode(p.Value); err != nil {
					return false, meta, err
				}
			case queueKey:
				record = p
			}
		}
		queue, err := n.keys().DecodeGroupQueue(group, record, pairs)
		if err != nil {
			return false, meta, err
		}
		return ok(rec, queue), meta, nil
	})
}
