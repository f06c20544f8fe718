package main

import (
	"encoding/json"
	"fmt"
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

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/notify"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
)

// cluster starts one agent per node, the first a server, each node in the group given (none:
// the default group).
func cluster(t *testing.T, groups []string) []*testNode {
	t.Helper()
	return zonedCluster(t, groups, make([]string, len(groups)))
}

// zonedCluster is cluster with each node in the zone given too (none: "").
func zonedCluster(t *testing.T, groups, zones []string) []*testNode {
	t.Helper()
	meta := func(i int) []string {
		var out []string
		if groups[i] != "" {
			out = append(out, "-node-meta", store.GroupMeta+":"+groups[i])
		}
		if zones[i] != "" {
			out = append(out, "-node-meta", store.ZoneMeta+":"+zones[i])
		}
		return out
	}
	server := consultest.Dev(t, "n00", meta(0)...)
	nodes := []*testNode{newTestNode(t, server)}
	for i := 1; i < len(groups); i++ {
		nodes = append(nodes, newTestNode(t, consultest.Client(t, fmt.Sprintf("n%02d", i), server, meta(i)...)))
	}
	// A client's node meta reaches the catalog with its agent's first sync, a moment after it
	// joined: wait for every node's, as a share of a group counts the nodes by it.
	waitUntil(t, 30*time.Second, func() string { return "the nodes' meta never reached the catalog" }, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		catalog, meta, err := server.Client.Catalog().Nodes(q)
		if err != nil {
			return false, nil, err
		}
		synced := 0
		for _, c := range catalog {
			for i, n := range nodes {
				if c.Node == n.agent.Node && c.Meta[store.GroupMeta] == groups[i] && c.Meta[store.ZoneMeta] == zones[i] {
					synced++
				}
			}
		}
		return synced == len(nodes), meta, nil
	})
	return nodes
}

// TestQuorumCountsRebootsInFlight: nodes that share a service race, triggered together, with a
// pre-boot task that keeps them preparing for a second. A node holding a place anywhere in the
// fleet counts as a failing instance, and places are taken one after the other fleet-wide, so
// no more nodes start than the service's rule allows at once, within a group with a limit above
// 1 and across groups; and at least one starts.
func TestQuorumCountsRebootsInFlight(t *testing.T) {
	for _, tt := range []struct {
		name   string
		groups []string
		limits map[string]string
		tags   []string
		want   int
	}{
		{"three computes, limit 3, max_failing=0", []string{"compute", "compute", "compute"}, map[string]string{"compute": "3"}, []string{"rebootmgr", "max_failing=0"}, 1},
		{"two groups, min_passing=2 of 2", []string{"a", "b"}, nil, []string{"rebootmgr", "min_passing=2"}, 1},
		{"five computes, limit 5, max_failing=2", []string{"compute", "compute", "compute", "compute", "compute"}, map[string]string{"compute": "5"}, []string{"rebootmgr", "max_failing=2"}, 3},
		{"four nodes in four groups, every instance must pass", []string{"a", "b", "c", ""}, nil, []string{"rebootmgr"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nodes := cluster(t, tt.groups)
			for group, limit := range tt.limits {
				nodes[0].expect(nodes[0].run("limit", group, limit), 0)
			}
			for _, n := range nodes {
				n.agent.RegisterService("svc", tt.tags, "passing")
			}
			for _, n := range nodes {
				for _, o := range nodes {
					n.agent.WaitCheck(o.agent.Node, "svc", consultest.ServiceCheckID("svc"), "passing")
				}
				n.task("pre", "10-slow", "sleep 1")
				n.put(n.keys().RebootRequired(n.agent.Node), "")
			}
			done := map[*testNode]bool{}
			for round := 0; len(done) < len(nodes); round++ {
				if round > len(nodes) {
					t.Fatalf("not every node rebooted after %d rounds: %d did", round, len(done))
				}
				results := runAll(nodes, "reboot", "--check-triggers")
				started := startedIn(nodes, results, done, func(n *testNode, r result) {
					if r.code == exitUnhealthy {
						n.expect(r, exitUnhealthy, "reboot in flight")
					} else {
						n.expect(r, exitLockHeld)
					}
				})
				want := min(tt.want, len(nodes)-len(done))
				if len(started) != want {
					t.Fatalf("round %d: %d nodes started a reboot, want %d", round, len(started), want)
				}
				if got := inFlight(t, nodes[0]); len(got.Holders) != want {
					t.Fatalf("round %d: the fleet's holders are %v, want %d", round, got.Holders, want)
				}
				for _, n := range started {
					n.boot()
					n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
					done[n] = true
				}
			}
			if got := inFlight(t, nodes[0]); len(got.Holders) != 0 {
				t.Fatalf("holders left after every reboot: %v", got.Holders)
			}
		})
	}
}

func inFlight(t *testing.T, n *testNode) lock.Fleet {
	t.Helper()
	return stored(t, n, n.keys().Holders(), lock.DecodeFleet)
}

// TestLoweredLimitHoldsPreparingNodes: two nodes of a group with limit 2 prepare; the limit is
// lowered to 1 before their tasks end. One reboots; the other keeps its place, preparing, and
// reboots once the first has finished.
func TestLoweredLimitHoldsPreparingNodes(t *testing.T) {
	nodes := cluster(t, []string{"compute", "compute"})
	gate := filepath.Join(t.TempDir(), "go")
	nodes[0].expect(nodes[0].run("limit", "compute", "2"), 0)
	for _, n := range nodes {
		n.task("pre", "10-wait", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.05; done", gate))
		n.put(n.keys().RebootRequired(n.agent.Node), "")
	}
	results := make(chan []result, 1)
	go func() { results <- runAll(nodes, "reboot", "--check-triggers") }()
	waitLock(t, nodes[0], "compute", func(r lock.Record) bool { return len(r.Holders) == 2 })
	nodes[0].expect(nodes[0].run("limit", "compute", "1"), 0)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rs := <-results
	var started, waiting *testNode
	for i, n := range nodes {
		if rs[i].code == 0 {
			n.expect(rs[i], 0, "reboot started")
			started = n
		} else {
			n.expect(rs[i], exitLockHeld, "keeps its place")
			waiting = n
		}
	}
	if started == nil || waiting == nil {
		t.Fatalf("want one node rebooting and one waiting: %v", rs)
	}
	rec := lockAt(t, nodes[0], "compute")
	if h, _ := rec.Holder(waiting.agent.Node); h.Phase != lock.Preparing {
		t.Fatalf("the waiting node lost its place: %+v", rec)
	}
	waiting.expect(waiting.run("reboot", "--check-triggers"), exitLockHeld, "keeps its place")
	started.boot()
	started.expect(started.run("reboot", "--check-triggers"), 0, "reboot finished")
	waiting.expect(waiting.run("reboot", "--check-triggers"), 0, "reboot started")
	if started.rebootCount()+waiting.rebootCount() != 2 {
		t.Fatal("want one reboot each")
	}
}

// waitLock waits, with blocking queries, until group's lock record satisfies ok.
func waitLock(t *testing.T, n *testNode, group string, ok func(lock.Record) bool) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() string {
		return fmt.Sprintf("lock of group %s never as wanted: %+v", group, lockAt(t, n, group))
	}, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		pair, meta, err := n.kv().Get(n.keys().GroupLock(group), q)
		if err != nil || pair == nil {
			return false, meta, err
		}
		rec, derr := lock.Decode(pair.Value)
		return derr == nil && ok(rec), meta, nil
	})
}

// TestStopIsTheLastRead: a stop flag set anywhere on the way, even by the webhook that hears
// the reboot is starting, halts the node before the reboot command; the lock stays preparing.
func TestStopIsTheLastRead(t *testing.T) {
	for _, tt := range []struct {
		name string
		// setup arranges for the stop flag to be set at one step; it returns extra flags.
		setup func(t *testing.T, n *testNode) []string
	}{
		{"by the webhook announcing the reboot", func(t *testing.T, n *testNode) []string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := n.kv().Put(&api.KVPair{Key: n.keys().Stop(), Value: []byte("set by the webhook")}, nil); err != nil {
					t.Error(err)
				}
				time.Sleep(200 * time.Millisecond)
			}))
			t.Cleanup(srv.Close)
			return []string{"--notify-url", srv.URL}
		}},
		{"by a pre-boot task", func(t *testing.T, n *testNode) []string {
			n.task("pre", "10-stop", fmt.Sprintf("%s kv put -http-addr=%s %s 'set by a task' >/dev/null", consultest.Binary(t), n.agent.HTTPAddr, n.keys().Stop()))
			return nil
		}},
		{"for the group, by the webhook", func(t *testing.T, n *testNode) []string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := n.kv().Put(&api.KVPair{Key: n.keys().GroupStop("default"), Value: []byte("set by the webhook")}, nil); err != nil {
					t.Error(err)
				}
			}))
			t.Cleanup(srv.Close)
			return []string{"--notify-url", srv.URL}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			extra := tt.setup(t, n)
			n.expect(n.run("reboot", extra...), exitStopped, "set by")
			if n.rebootCount() != 0 {
				t.Fatal("rebooted with the stop flag set")
			}
			if h := n.holder("n1"); h.Phase != lock.Preparing {
				t.Fatalf("lock after the halt: %+v", n.lockRecord())
			}
		})
	}
}

// TestHealthAfterTheAnnouncement: the webhook that hears the reboot is starting may answer
// seconds later; a service that fails meanwhile, here while it answers, stops the reboot. The
// node gives its place back and leaves maintenance, as after any failed health gate.
func TestHealthAfterTheAnnouncement(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Kind != pipeline.NotifyRebootStarted {
			return
		}
		if err := n.agent.Client.Agent().UpdateTTL(consultest.ServiceCheckID("galera"), "failed while the webhook answered", "critical"); err != nil {
			t.Error(err)
			return
		}
		// Answer once the catalog shows it.
		var index uint64
		for {
			checks, meta, err := n.agent.Client.Health().Checks("galera", &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
			if err != nil {
				t.Error(err)
				return
			}
			if checks.AggregatedStatus() == api.HealthCritical {
				return
			}
			index = meta.LastIndex
		}
	}))
	t.Cleanup(srv.Close)
	n.expect(n.run("reboot", "--notify-url", srv.URL), exitUnhealthy, "failed while the webhook answered")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted with its service failing")
	}
	if n.get(n.keys().Lock()) != nil || n.inMaintenance() {
		t.Fatalf("lock or maintenance kept: %+v, maintenance %v", n.lockRecord(), n.inMaintenance())
	}
}

// TestMissingMemberCountsAsFailing: a node whose agent left the cluster cleanly takes its
// services out of the catalog; one killed leaves them critical. Either way, once its services
// were seen, it counts as a failing instance: gone, until an operator forgets it; killed, by its
// checks, and forget refuses it while Consul still lists it (a daemon that saw it would never
// remember it again).
func TestMissingMemberCountsAsFailing(t *testing.T) {
	for _, tt := range []struct {
		name string
		gone func(t *testing.T, n *testNode)
		// catalogGone: the node is gone from the catalog, so forget is what lets the other go.
		catalogGone bool
	}{
		{"clean leave", func(t *testing.T, n *testNode) {
			if err := n.agent.Client.Agent().Leave(); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"kill -9", func(t *testing.T, n *testNode) { n.agent.Kill() }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nodes := cluster(t, []string{"", ""})
			n, other := nodes[0], nodes[1]
			for _, x := range nodes {
				x.agent.RegisterService("cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
			}
			n.agent.WaitCheck(other.agent.Node, "cassandra", consultest.ServiceCheckID("cassandra"), "passing")
			// A daemon remembers the members it sees.
			d := n.startDaemon()
			waitKey(t, n, n.keys().Member("cassandra", other.agent.Node))
			d.stop()

			tt.gone(t, other)
			waitCatalog(t, n, other.agent.Node, tt.catalogGone)
			n.put(n.keys().RebootRequired("n00"), "")
			n.expect(n.run("reboot", "--check-triggers"), exitUnhealthy, "cassandra")
			n.expect(n.run("check"), exitUnhealthy)
			if n.rebootCount() != 0 {
				t.Fatal("rebooted with a cassandra member gone")
			}
			if !tt.catalogGone {
				n.expect(n.run("forget", other.agent.Node), exitError, "n01 runs cassandra and is still in Consul's catalog")
				if n.get(n.keys().Member("cassandra", other.agent.Node)) == nil {
					t.Fatal("a node still in the catalog was forgotten")
				}
				return
			}
			n.expect(n.run("forget", other.agent.Node, "cassandra"), 0, "forgot n01 as a member of cassandra")
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
		})
	}
}

func waitKey(t *testing.T, n *testNode, key string) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() string { return "key " + key + " never written" }, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		pair, meta, err := n.kv().Get(key, q)
		return pair != nil, meta, err
	})
}

// waitCatalog waits until node is gone from the catalog (gone) or its serfHealth is critical.
func waitCatalog(t *testing.T, n *testNode, node string, gone bool) {
	t.Helper()
	waitUntil(t, 60*time.Second, func() string {
		return fmt.Sprintf("node %s never %s", node, map[bool]string{true: "left the catalog", false: "failed"}[gone])
	}, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		checks, meta, err := n.agent.Client.Health().Node(node, q)
		if gone {
			return len(checks) == 0, meta, err
		}
		return slices.ContainsFunc(checks, func(c *api.HealthCheck) bool {
			return c.CheckID == "serfHealth" && c.Status == api.HealthCritical
		}), meta, err
	})
}

// TestFailureThatCannotBeRecordedHalts: a pre-boot task fails, and the token may not write the
// node's disabled mark. The daemon does not take the lock and run the task again and again: it
// halts its node, saying so, until the mark can be written.
func TestFailureThatCannotBeRecordedHalts(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	n.put(n.keys().RebootRequired("n1"), "")
	runs := filepath.Join(n.dir, "runs")
	n.task("pre", "10-fail", fmt.Sprintf("echo ran >> %s; echo %s; exit 1", runs, strings.Repeat("x", 2000)))
	pol := policy(t, "rebootmgr-daemon.hcl", "n1") + "\nkey \"service/rebootmgr/n1/disabled\" { policy = \"read\" }\n"
	t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, pol))
	d := n.startDaemon()
	fleettest.WaitSeen(t, d.Log.Seen("the mark cannot be written: halted"), "the mark cannot be written: halted")
	// Events keep coming (a request written again, twice); the task must not run again. The
	// second evaluation starts after the first one's run ended.
	for i := range 2 {
		evaluated := d.Log.Count("msg=evaluating")
		n.put(n.keys().RebootRequired("n1"), fmt.Sprint("again ", i))
		fleettest.WaitSeen(t, d.Log.SeenN("msg=evaluating", evaluated+1), "an evaluation of the new request")
	}
	data, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), "ran"); got != 1 {
		t.Fatalf("the failing task ran %d times", got)
	}
	if n.rebootCount() != 0 {
		t.Fatal("rebooted")
	}
}

// TestAgentKeepsServing: Consul keeps a blocking query, and one of the agent's connections per
// client address (200 by default), until its wait ends, even when the client has gone. After
// 100 pipeline runs in one daemon, and after 20 daemons killed in a minute, the agent still
// answers every one of a burst of requests from the same address.
func TestAgentKeepsServing(t *testing.T) {
	const burst = 60
	serving := func(t *testing.T, n *testNode) {
		t.Helper()
		codes := make(chan int, burst)
		for range burst {
			go func() {
				resp, err := http.Get("http://" + n.agent.HTTPAddr + "/v1/kv/" + n.keys().Stop())
				if err != nil {
					codes <- 0
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		answered := 0
		for range burst {
			if code := <-codes; code == http.StatusOK || code == http.StatusNotFound {
				answered++
			}
		}
		if answered != burst {
			t.Fatalf("the agent answered %d of %d requests", answered, burst)
		}
	}
	t.Run("100 pipeline runs", func(t *testing.T) {
		n := dev(t)
		// The task withdraws the request, so every run takes the lock, runs its tasks (waiting on
		// the stop flags meanwhile) and gives the lock back.
		n.task("pre", "10-withdraw", fmt.Sprintf("%s kv delete -http-addr=%s %s >/dev/null", consultest.Binary(t), n.agent.HTTPAddr, n.keys().RebootRequired("n1")))
		d := n.startDaemon()
		for i := range 100 {
			n.put(n.keys().RebootRequired("n1"), fmt.Sprint(i))
			fleettest.WaitSeen(t, d.Log.SeenN("reboot request withdrawn while preparing", i+1), "the run withdrawn")
		}
		serving(t, n)
	})
	t.Run("20 daemons killed in a minute", func(t *testing.T) {
		bin := fleettest.Build(t, true)
		n := dev(t)
		n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
		for i := range 20 {
			d := n.startDaemonProc(bin)
			fleettest.WaitSeen(t, d.Log.Seen("idle: no reboot required"), "the daemon idle")
			if i > 0 && d.Log.Count("started again soon after a daemon that did not stop cleanly") != 1 {
				t.Fatalf("start %d was not taken for a restart loop:\n%s", i, d.Log)
			}
			d.Kill9()
		}
		serving(t, n)
	})
}

// TestGatingReadsAreWholeAndCurrent: the reads a reboot is judged on are consistent, even on an
// agent whose discovery_max_stale would serve them stale, and results an ACL token hides are an
// error, never fewer instances.
func TestGatingReadsAreWholeAndCurrent(t *testing.T) {
	t.Run("not stale under discovery_max_stale", func(t *testing.T) {
		n := newTestNode(t, consultest.Dev(t, "n1", "-hcl", `discovery_max_stale = "1h"`))
		n.agent.RegisterService("galera", []string{"rebootmgr", "min_passing=2"}, "passing")
		n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr"}, "passing")
		target, _ := url.Parse("http://" + n.agent.HTTPAddr)
		rp := httputil.NewSingleHostReverseProxy(target)
		var mu sync.Mutex
		var seen []string
		rp.ModifyResponse = func(r *http.Response) error {
			path := r.Request.URL.Path
			if strings.HasPrefix(path, "/v1/health/") || strings.HasPrefix(path, "/v1/catalog/") {
				mu.Lock()
				seen = append(seen, path+": "+r.Header.Get("X-Consul-Effective-Consistency"))
				mu.Unlock()
			}
			return nil
		}
		proxy := httptest.NewServer(rp)
		t.Cleanup(proxy.Close)
		n.put(n.keys().RebootRequired("n1"), "")
		n.expect(n.run("reboot", "--check-triggers", "--consul-addr", strings.TrimPrefix(proxy.URL, "http://")), 0, "reboot started")
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			t.Fatal("no health read seen")
		}
		for _, s := range seen {
			if !strings.HasSuffix(s, ": consistent") {
				t.Errorf("a gating read was not consistent: %s", s)
			}
		}
	})
	t.Run("an instance hidden by ACLs", func(t *testing.T) {
		agent := consultest.DevACL(t, "n1")
		n := newTestNode(t, agent)
		n.agent.RegisterService("cassandra", []string{"rebootmgr", "max_failing=0"}, "passing")
		n.agent.RegisterRemote("n2", "cassandra", []string{"rebootmgr"}, "critical")
		n.put(n.keys().RebootRequired("n1"), "")
		// The daemon's policy, but nodes readable only by name: n2 and its instance are hidden.
		pol := strings.Replace(policy(t, "rebootmgr-daemon.hcl", "n1"), `node_prefix "" { policy = "read" }`, `node "n1" { policy = "read" }`, 1)
		if pol == policy(t, "rebootmgr-daemon.hcl", "n1") {
			t.Fatal("the daemon policy no longer reads node_prefix: adapt the test")
		}
		t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, pol))
		n.expect(n.run("reboot", "--check-triggers"), exitError, "hidden by Consul's ACLs")
		n.expect(n.run("check"), exitError, "hidden by Consul's ACLs")
		if n.rebootCount() != 0 {
			t.Fatal("rebooted on a view with an instance hidden")
		}
	})
}
