package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// These tests attack the promises of the lock and health gates from the outside: each sets up
// a sequence an operator or a fleet can produce, and fails if the promise does not hold.

// deregisterNode takes node out of the catalog, as a clean leave does.
func deregisterNode(t *testing.T, a *consultest.Agent, node string) {
	t.Helper()
	if _, err := a.Client.Catalog().Deregister(&api.CatalogDeregistration{Node: node}, nil); err != nil {
		t.Fatal(err)
	}
}

// memberKnown says whether service's members hold node.
func memberKnown(n *testNode, service, node string) bool {
	return n.get(n.keys().Member(service, node)) != nil
}

// TestAdversaryForgottenMemberSeenAgainIsRemembered: a node is forgotten as a member of a service
// (the operator thought it gone for good), then comes back and runs the service again, seen by
// a daemon that had remembered it before the forget. Members are "every node seen running a
// tagged service": it must be remembered again, so that when it leaves the catalog once more it
// counts as failing and a max_failing=0 peer does not reboot.
func TestAdversaryForgottenMemberSeenAgainIsRemembered(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
	// gate holds n1 back, with its health judged (and members remembered) at every run, until
	// the end of the test.
	n.agent.RegisterService("gate", []string{"rebootmgr"}, "critical")
	n.agent.RegisterRemote("n2", "cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
	d := n.startDaemon()
	waitKey(t, n, n.keys().Member("cassandra", "n2"))

	// n2 leaves for good, the operator forgets it.
	deregisterNode(t, n.agent, "n2")
	n.expect(n.run("forget", "n2", "cassandra"), 0, "forgot n2")

	// n2 is back under its name, running cassandra: the daemon's health watch sees it, and a
	// run judges n1's health (held back by gate).
	n.agent.RegisterRemote("n2", "cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
	n.put(n.keys().RebootRequired("n1"), "")
	fleettest.WaitSeen(t, d.Log.Seen("gate on this node"), "a run held back by gate")
	evaluated := d.Log.Count("msg=evaluating")
	n.put(n.keys().RebootRequired("n1"), "again")
	fleettest.WaitSeen(t, d.Log.SeenN("msg=evaluating", evaluated+1), "one more run")
	deadline := time.Now().Add(5 * time.Second)
	for !memberKnown(n, "cassandra", "n2") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	remembered := memberKnown(n, "cassandra", "n2")
	if !remembered {
		t.Errorf("n2 runs cassandra again, seen by the daemon's watch and its runs, but %s was not written again", n.keys().Member("cassandra", "n2"))
	}

	// n2 leaves cleanly again; n1's gate passes. n2 is a member gone from the catalog: n1
	// (max_failing=0) must not reboot.
	deregisterNode(t, n.agent, "n2")
	waitCatalog(t, n, "n2", true)
	n.agent.SetService("gate", "passing")
	select {
	case <-d.Log.Seen("gone from Consul's catalog"):
	case <-d.Log.Seen("msg=rebooting"):
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon neither rebooted nor said n2 is gone")
	}
	if n.rebootCount() != 0 {
		t.Fatalf("n1 rebooted (max_failing=0) while n2, seen running cassandra after its forget, was gone from the catalog (remembered: %v)", remembered)
	}
}

// TestAdversaryStalePlaceInAnotherGroup: a node holds a place in group a from a run that did not
// reboot, and is moved to group b (its node meta; here --group). It takes no second place while
// the fleet's holders give it one in group a; once the operator unlocks that place, it takes
// one in b, and still counts as a reboot in flight for every other group: a node of group c
// sharing a max_failing=0 service does not start.
func TestAdversaryStalePlaceInAnotherGroup(t *testing.T) {
	nodes := cluster(t, []string{"", ""})
	moved, other := nodes[0], nodes[1]
	for _, x := range nodes {
		x.agent.RegisterService("svc", []string{"rebootmgr", "max_failing=0"}, "passing")
	}
	moved.agent.WaitCheck(other.agent.Node, "svc", consultest.ServiceCheckID("svc"), "passing")
	for _, g := range []string{"a", "b", "c"} {
		moved.put(moved.keys().GroupLimit(g), "1")
	}

	// A run in group a takes a place and is shut down while preparing: the place stays.
	gate := filepath.Join(moved.dir, "go")
	moved.task("pre", "10-wait", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.05; done", gate))
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan result, 1)
	go func() { first <- moved.runWith(ctx, nil, &fleettest.Log{}, "reboot", "--group", "a") }()
	waitLock(t, moved, "a", func(r lock.Record) bool { return len(r.Holders) == 1 })
	cancel()
	<-first
	if h, _ := lockAt(t, moved, "a").Holder(moved.agent.Node); h.Phase != lock.Preparing {
		t.Fatalf("no place left in group a: %+v", lockAt(t, moved, "a"))
	}

	// In group b it takes no second place.
	moved.expect(moved.run("reboot", "--group", "b"), exitError, "holds a place in group a", "rebootmgr unlock n00 --group a")
	if len(lockAt(t, moved, "b").Holders) != 0 {
		t.Fatalf("took a second place: %+v", lockAt(t, moved, "b"))
	}

	// The operator clears the leftover place in group a; the node takes its place in b.
	moved.expect(moved.run("unlock", moved.agent.Node, "--group", "a", "--force"), 0, "released")
	second := make(chan result, 1)
	go func() { second <- moved.run("reboot", "--group", "b") }()
	waitLock(t, moved, "b", func(r lock.Record) bool { return len(r.Holders) == 1 })
	if g, _ := inFlight(t, moved).Group(moved.agent.Node); g != "b" {
		t.Fatalf("fleet's holders with the node preparing in b: %v", inFlight(t, moved).Holders)
	}

	// A node of group c sharing svc (max_failing=0) must not start while the node prepares in b.
	r := other.run("reboot", "--group", "c")
	writeFile(t, gate, "")
	<-second
	other.expect(r, exitUnhealthy, "reboot in flight")
}

// TestAdversaryUnlockNodeGoneFromCatalog: rebootmgr unlock is for a node that will not come back,
// typically one whose agent left the catalog. Without --group it must find the node's place
// where it is (the fleet's holders know its group), not fall back to the default group.
func TestAdversaryUnlockNodeGoneFromCatalog(t *testing.T) {
	nodes := cluster(t, []string{"", "compute"})
	ops, gone := nodes[0], nodes[1]
	gone.put(gone.keys().RebootRequired(gone.agent.Node), "")
	gone.expect(gone.run("reboot", "--check-triggers"), 0, "reboot started")
	if g, _ := inFlight(t, ops).Group(gone.agent.Node); g != "compute" {
		t.Fatalf("fleet's holders: %v", inFlight(t, ops).Holders)
	}
	// The machine never comes back; its agent is gone and the node removed from the catalog
	// (consul force-leave -prune).
	gone.agent.Kill()
	deregisterNode(t, ops.agent, gone.agent.Node)
	waitCatalog(t, ops, gone.agent.Node, true)
	r := ops.run("unlock", gone.agent.Node, "--force")
	if r.code != 0 {
		t.Fatalf("unlock of %s (holding group compute, fleet's holders %v) without --group failed: %s", gone.agent.Node, inFlight(t, ops).Holders, r)
	}
}

// TestAdversaryOddNodeNameInCatalog: Consul takes node names that cannot be a key's segment as
// they are ("n 2"). Members are "every node seen running a tagged service": such a node is
// remembered too (its key escaped), runs are not refused for it, and a well-named node seen
// beside it is remembered as well. Once both leave the catalog cleanly, n1 (max_failing=0) must
// not reboot.
func TestAdversaryOddNodeNameInCatalog(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
	n.agent.RegisterService("gate", []string{"rebootmgr"}, "critical")
	n.agent.RegisterRemote("n 2", "cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
	n.agent.RegisterRemote("n3", "cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
	d := n.startDaemon()
	waitKey(t, n, n.keys().Member("cassandra", "n3"))
	waitKey(t, n, n.keys().Member("cassandra", "n 2"))
	n.put(n.keys().RebootRequired("n1"), "")
	fleettest.WaitSeen(t, d.Log.Seen(`msg="waiting for health`), "a run held back by the failing gate, not refused for the odd name")

	// n3 leaves first (while n 2 is still there), then n 2.
	deregisterNode(t, n.agent, "n3")
	waitCatalog(t, n, "n3", true)
	deregisterNode(t, n.agent, "n 2")
	waitCatalog(t, n, "n 2", true)
	n.agent.SetService("gate", "passing")
	select {
	case <-d.Log.Seen("gone from Consul's catalog"):
	case <-d.Log.Seen("msg=rebooting"):
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon neither rebooted nor said a member is gone")
	}
	if n.rebootCount() != 0 {
		t.Fatalf("n1 rebooted (cassandra max_failing=0) with two nodes seen running cassandra gone from the catalog: members %v", keysUnder(t, n, n.keys().MembersPrefix()))
	}
	n.expect(n.run("forget", "n 2"), 0, "forgot n 2 as a member of cassandra")
}

func keysUnder(t *testing.T, n *testNode, prefix string) []string {
	t.Helper()
	keys, _, err := n.kv().Keys(prefix, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestAdversaryRevertAfterFailedLastRead: the last read before the reboot command fails (Consul
// unreachable right after the phase rebooting is written). The node must not reboot, and the
// state it leaves must say what happened: either the phase is back to preparing, or the next
// run must not claim that the reboot command failed to reboot the machine.
func TestAdversaryRevertAfterFailedLastRead(t *testing.T) {
	n := dev(t)
	// The proxy passes everything until the transaction that writes phase rebooting has been
	// applied; from then on every request fails, as if the agent had gone.
	proxy := newFaultProxy(t, n.agent.HTTPAddr, func(r *http.Request, body []byte) bool {
		return r.Method == http.MethodPut && r.URL.Path == "/v1/txn" && txnWrites(body, `"phase":"rebooting"`)
	})
	r := n.run("reboot", "--consul-addr", proxy.addr)
	t.Logf("run with the last read failing: %s", r)
	if n.rebootCount() != 0 {
		t.Fatal("rebooted although the last read before the reboot command failed")
	}
	proxy.heal()
	h := n.holder("n1")
	t.Logf("lock after: %+v", n.lockRecord())
	next := n.run("reboot")
	t.Logf("next run: %s", next)
	if h.Phase == lock.Rebooting && next.code == exitNotRebooted {
		t.Errorf("the reboot command never ran, but the lock stays in phase rebooting and the next run says: %s", lastLine(next.stderr))
	}
}

// faultProxy forwards to an agent until a request it is told of has been answered; then it
// answers every request with 500 until healed.
type faultProxy struct {
	addr    string
	mu      sync.Mutex
	failing bool
}

func newFaultProxy(t *testing.T, agent string, trip func(*http.Request, []byte) bool) *faultProxy {
	t.Helper()
	target, _ := url.Parse("http://" + agent)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &faultProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		failing := p.failing
		p.mu.Unlock()
		if failing {
			http.Error(w, "injected fault: agent unreachable", http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
		if trip(r, body) {
			p.mu.Lock()
			p.failing = true
			p.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	// A blocking query through the proxy would hold Close for its whole wait.
	t.Cleanup(srv.CloseClientConnections)
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *faultProxy) heal() {
	p.mu.Lock()
	p.failing = false
	p.mu.Unlock()
}

// txnWrites says whether a transaction's body writes a value containing text.
func txnWrites(body []byte, text string) bool {
	var ops []struct {
		KV *struct {
			Verb, Key string
			Value     []byte
		}
	}
	if json.Unmarshal(body, &ops) != nil {
		return false
	}
	for _, op := range ops {
		if op.KV != nil && bytes.Contains(op.KV.Value, []byte(text)) {
			return true
		}
	}
	return false
}

// hookProxy forwards to an agent, calling before ahead of each request.
func hookProxy(t *testing.T, agent string, before func(*http.Request, []byte)) string {
	t.Helper()
	target, _ := url.Parse("http://" + agent)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		before(r, body)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// A blocking query through the proxy would hold Close for its whole wait.
	t.Cleanup(srv.CloseClientConnections)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestAdversaryStopBetweenReadAndPlace: the stop flag is set after the View a place is judged on
// and before the place is written (the write checks only the two lock records), and the agent
// is slow to answer reads of the stop flag from then on. "Nothing further is started" once the
// flag is set: the pre-boot tasks (a drain) must not run.
func TestAdversaryStopBetweenReadAndPlace(t *testing.T) {
	n := dev(t)
	drained := filepath.Join(n.dir, "drained")
	n.task("pre", "10-drain", "touch "+drained)
	var once sync.Once
	var set atomic.Bool
	addr := hookProxy(t, n.agent.HTTPAddr, func(r *http.Request, body []byte) {
		if set.Load() && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/stop") {
			time.Sleep(300 * time.Millisecond)
		}
		if r.Method == http.MethodPut && r.URL.Path == "/v1/txn" && txnWrites(body, `"phase":"preparing"`) {
			once.Do(func() {
				if _, err := n.kv().Put(&api.KVPair{Key: n.keys().Stop(), Value: []byte("set between the read and the write")}, nil); err != nil {
					t.Error(err)
				}
				set.Store(true)
			})
		}
	})
	r := n.run("reboot", "--consul-addr", addr)
	t.Logf("lock after: %+v", n.lockRecord())
	if n.rebootCount() != 0 {
		t.Fatal("rebooted with the stop flag set")
	}
	if _, err := os.Stat(drained); err == nil {
		t.Fatalf("the pre-boot task ran although the stop flag was set before the place was written: %s", lastLine(r.stderr))
	}
	n.expect(r, exitStopped, "set between")
}

// TestIdleDaemonRemembersNewMembers: an idle daemon holds its health watches (a reboot of one of
// its services' members is nothing to it), yet a member new to one of its services, with no
// daemon of its own to remember itself (see TestMemberWithADaemonRemembersItself), is
// remembered: the first at once, by the query the daemon left asking; those that come while the
// watch is held when the daemon takes its turn at reading the service whole, once every
// ceil(n/2) ticks for a service of n nodes at its last read (here ticks of a second): the next
// tick for two nodes, one of the next three for six; and again when it was forgotten and came
// back, however briefly it was gone. So a member seen only by idle daemons still counts once
// it leaves cleanly.
func TestIdleDaemonRemembersNewMembers(t *testing.T) {
	n := dev(t)
	tags := []string{"rebootmgr", "max_failing=0"}
	n.agent.RegisterService("cassandra", tags, "passing")
	d := n.startDaemon("--interval", "1s")
	fleettest.WaitSeen(t, d.Log.Seen(`msg="idle: no reboot required"`), "the daemon idle")
	n.agent.RegisterRemote("n2", "cassandra", tags, "passing")
	waitKey(t, n, n.keys().Member("cassandra", "n2"))
	fleettest.WaitSeen(t, d.Log.Seen("idle, and only the locks or health changed: not evaluating"), "the change heard, and not evaluated")
	// Two nodes at its last read: its turn is every tick.
	for _, node := range []string{"n3", "n4", "n5", "n6"} {
		n.agent.RegisterRemote(node, "cassandra", tags, "passing")
	}
	fleettest.WaitSeen(t, d.Log.Seen("sources=[tick]"), "the next tick")
	for _, node := range []string{"n3", "n4", "n5", "n6"} {
		waitKey(t, n, n.keys().Member("cassandra", node))
	}
	// Six nodes at its last read: its turn is one tick in three.
	n.agent.RegisterRemote("n7", "cassandra", tags, "passing")
	start := time.Now()
	waitKey(t, n, n.keys().Member("cassandra", "n7"))
	t.Logf("n7 remembered after %s (the daemon's turn comes every 3 ticks of 1s)", time.Since(start).Round(100*time.Millisecond))

	// n7 leaves, is forgotten and comes back between two of the daemon's turns, most likely:
	// the daemon's watch, held meanwhile, compares what it reads at its turn with the members
	// afresh, and remembers n7 again.
	deregisterNode(t, n.agent, "n7")
	n.expect(n.run("forget", "n7", "cassandra"), 0, "forgot n7")
	n.agent.RegisterRemote("n7", "cassandra", tags, "passing")
	waitKey(t, n, n.keys().Member("cassandra", "n7"))
}
