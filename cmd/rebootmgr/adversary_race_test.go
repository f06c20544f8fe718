package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// serviceRule is a service of the racing fleet: the nodes that run it, its tags, and how many of them
// may be in flight at once under its rule (every holder counts as failing; a node judges the
// rule with itself still passing).
type serviceRule struct {
	nodes []int
	tags  []string
	cap   int
}

// TestAdversaryFleetRace: eight nodes in three groups with limits of 2, sharing services with
// min_passing, max_failing and no quorum tag, all run by daemons. Two of them hold a place
// from an earlier run that was cut short. All are requested at once; while they roll, daemons of
// nodes not yet rebooted are restarted. A monitor reads all of rebootmgr's keys at one index,
// again and again: at no time may a group's lock hold more than its limit, the fleet's holders
// differ from the groups' holders, or more holders run a service than its rule allows. Every
// node reboots exactly once.
func TestAdversaryFleetRace(t *testing.T) {
	groups := []string{"a", "a", "a", "b", "b", "b", "c", "c"}
	rules := map[string]serviceRule{
		"web":   {[]int{0, 1, 2, 3}, []string{"rebootmgr", "min_passing=3"}, 2},
		"db":    {[]int{2, 3, 4, 5, 6, 7}, []string{"rebootmgr", "max_failing=1"}, 2},
		"cache": {[]int{5, 6, 7}, []string{"rebootmgr"}, 1},
	}
	limits := map[string]int{"a": 2, "b": 2, "c": 2}
	nodes := cluster(t, groups)
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.agent.Node
	}
	for g, l := range limits {
		nodes[0].expect(nodes[0].run("limit", g, fmt.Sprint(l)), 0)
	}
	for svc, r := range rules {
		for _, i := range r.nodes {
			nodes[i].agent.RegisterService(svc, r.tags, "passing")
		}
	}
	for svc, r := range rules {
		for _, i := range r.nodes {
			nodes[0].agent.WaitCheck(names[i], svc, consultest.ServiceCheckID(svc), "passing")
		}
	}
	snapshots := filepath.Join(t.TempDir(), "at-reboot")
	for _, n := range nodes {
		n.task("pre", "10-work", "sleep 0.3")
	}
	rebootCmd := func(n *testNode) []string {
		// The snapshot first, "rebooted" last: a node counted as rebooted has its snapshot.
		return []string{"--reboot-command", fmt.Sprintf("(echo %s; %s kv get -http-addr=%s %s) | tr '\\n' ' ' >> %s; echo >> %s; echo rebooted >> %s",
			n.agent.Node, consultest.Binary(t), n.agent.HTTPAddr, n.keys().Holders(), snapshots, snapshots, n.reboots)}
	}

	// n00 (web) and n06 (db, cache) hold a place from runs that were cut short while preparing.
	for _, i := range []int{0, 6} {
		n := nodes[i]
		gate := filepath.Join(n.dir, "never")
		n.task("pre", "05-hang", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.05; done", gate))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() { done <- n.runWith(ctx, nil, &fleettest.Log{}, "reboot") }()
		waitLock(t, n, groups[i], func(r lock.Record) bool { _, ok := r.Holder(n.agent.Node); return ok })
		cancel()
		<-done
		writeFile(t, gate, "")
	}
	if f := inFlight(t, nodes[0]); len(f.Holders) != 2 {
		t.Fatalf("crashed holders not in place: %v", f.Holders)
	}

	// The monitor.
	stop := make(chan struct{})
	var violations []string
	var mu sync.Mutex
	monitorDone := make(chan struct{})
	states := 0
	go func() {
		defer close(monitorDone)
		kv := nodes[0].kv()
		var index uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			pairs, meta, err := kv.List(store.DefaultPrefix+"/", &api.QueryOptions{WaitIndex: index, WaitTime: time.Second, RequireConsistent: true})
			if err != nil {
				continue
			}
			index = meta.LastIndex
			if v := checkFleetState(pairs, names, groups, limits, rules); v != "" {
				mu.Lock()
				violations = append(violations, fmt.Sprintf("index %d: %s", meta.LastIndex, v))
				mu.Unlock()
			}
			states++
		}
	}()

	daemons := make([]*daemonRun, len(nodes))
	for i, n := range nodes {
		daemons[i] = n.startDaemon(rebootCmd(n)...)
	}
	for _, n := range nodes {
		n.put(n.keys().RebootRequired(n.agent.Node), "")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	finished := map[int]bool{}
	deadline := time.Now().Add(4 * time.Minute)
	for len(finished) < len(nodes) {
		if time.Now().After(deadline) {
			t.Fatalf("not every node rebooted: finished %v; fleet %v", finished, inFlight(t, nodes[0]).Holders)
		}
		next := -1
		for i, n := range nodes {
			if !finished[i] && n.rebootCount() > 0 {
				next = i
				break
			}
		}
		if next < 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		// A daemon of a node that holds no place yet restarts meanwhile (one that holds a place
		// may be running its reboot command, which a stop would end: a reboot that did not
		// happen, waiting for an operator, as it should).
		var waiting []int
		for i := range nodes {
			if _, holds := inFlight(t, nodes[0]).Holders[names[i]]; !finished[i] && i != next && nodes[i].rebootCount() == 0 && !holds {
				waiting = append(waiting, i)
			}
		}
		if len(waiting) > 0 {
			j := waiting[rng.IntN(len(waiting))]
			daemons[j].stop()
			daemons[j] = nodes[j].startDaemon(rebootCmd(nodes[j])...)
		}
		// The machine goes down and comes back.
		daemons[next].stop()
		nodes[next].boot()
		daemons[next] = nodes[next].startDaemon(rebootCmd(nodes[next])...)
		fleettest.WaitSeen(t, daemons[next].Log.Seen("idle: reboot finished"), "the post-boot part of "+names[next])
		finished[next] = true
	}
	close(stop)
	<-monitorDone
	for i, n := range nodes {
		if got := n.rebootCount(); got != 1 {
			t.Errorf("%s rebooted %d times", names[i], got)
		}
	}
	data := readFileString(t, snapshots)
	t.Logf("monitor read %d states; fleet's holders at each reboot command:\n%s", states, data)
	// Each reboot command appended its node and the fleet's holders it read; appends of commands
	// running together may share a line.
	matches := regexp.MustCompile(`(n\d\d) (\{"version":\d+,"holders":\{[^}]*\}\})`).FindAllStringSubmatch(data, -1)
	if len(matches) != len(nodes) {
		t.Errorf("%d snapshots at the reboot commands, want %d", len(matches), len(nodes))
	}
	for _, m := range matches {
		f, err := lock.DecodeFleet([]byte(m[2]))
		if err != nil {
			t.Errorf("snapshot %q: %v", m[0], err)
			continue
		}
		if v := checkServices(f.Nodes(), names, rules); v != "" {
			t.Errorf("at the reboot command of %s: %s", m[1], v)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
}

// checkFleetState judges one consistent read of every key: "" when every promise holds.
func checkFleetState(pairs api.KVPairs, names, groups []string, limits map[string]int, rules map[string]serviceRule) string {
	keys := store.Keys{Prefix: store.DefaultPrefix}
	byKey := map[string][]byte{}
	for _, p := range pairs {
		byKey[p.Key] = p.Value
	}
	var problems []string
	var fleet lock.Fleet
	if data, ok := byKey[keys.Holders()]; ok {
		var err error
		if fleet, err = lock.DecodeFleet(data); err != nil {
			return "fleet record: " + err.Error()
		}
	}
	inGroups := map[string]string{}
	for g, limit := range limits {
		data, ok := byKey[keys.GroupLock(g)]
		if !ok {
			continue
		}
		rec, err := lock.Decode(data)
		if err != nil {
			return "lock of " + g + ": " + err.Error()
		}
		if len(rec.Holders) > limit {
			problems = append(problems, fmt.Sprintf("group %s: %d holders, limit %d", g, len(rec.Holders), limit))
		}
		going := 0
		for _, h := range rec.Holders {
			inGroups[h.Node] = g
			if h.Phase != lock.Preparing {
				going++
			}
		}
		if going > limit {
			problems = append(problems, fmt.Sprintf("group %s: %d rebooting, limit %d", g, going, limit))
		}
	}
	for node, g := range inGroups {
		if fg, ok := fleet.Group(node); !ok || fg != g {
			problems = append(problems, fmt.Sprintf("%s holds a place in group %s, the fleet's holders say %q", node, g, fg))
		}
	}
	for node, g := range fleet.Holders {
		if inGroups[node] != g {
			problems = append(problems, fmt.Sprintf("the fleet's holders name %s in group %s, which it does not hold", node, g))
		}
	}
	if v := checkServices(fleet.Nodes(), names, rules); v != "" {
		problems = append(problems, v)
	}
	return strings.Join(problems, "; ")
}

// checkServices says which services have more holders among their nodes than their rule allows.
func checkServices(holders, names []string, rules map[string]serviceRule) string {
	var problems []string
	for svc, r := range rules {
		var in []string
		for _, i := range r.nodes {
			if slices.Contains(holders, names[i]) {
				in = append(in, names[i])
			}
		}
		if len(in) > r.cap {
			problems = append(problems, fmt.Sprintf("service %s (%s): %d in flight %v, its rule allows %d", svc, strings.Join(r.tags, ","), len(in), in, r.cap))
		}
	}
	return strings.Join(problems, "; ")
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
