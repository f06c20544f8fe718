package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// The simulated fleet of TestWebAtScale: nodes in four groups (the default one and three named
// by node meta), in each group (limit 2) the first node rebooting, the second preparing, and
// the next ones asking for a reboot. The service db runs on every node of group storage with a
// rule that two reboots in flight break; group edge is stopped; one in eight of the nodes of
// the default group that ask is disabled.
const (
	scaleNodes  = 1000
	scaleAsking = 25 // per group, the holders besides
)

var scaleGroups = []string{lock.DefaultGroup, "compute", "storage", "edge"}

// scaleNode is the i-th node's name and its group.
func scaleNode(i int) (string, string) {
	return fmt.Sprintf("node-%04d", i), scaleGroups[i%len(scaleGroups)]
}

// scaleFleet writes the simulated fleet into agent, by transactions of 64 operations: the
// nodes and the service db in the catalog, the groups' locks, limits and stop flag and the
// nodes' requests and disabled marks in the KV store.
func scaleFleet(t testing.TB, agent *consultest.Agent, now time.Time) {
	t.Helper()
	keys := store.Keys{Prefix: store.DefaultPrefix}
	var ops api.TxnOps
	kv := func(key, value string) {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: []byte(value)}})
	}
	seen := map[string]int{}
	for i := range scaleNodes {
		name, group := scaleNode(i)
		node := api.Node{Node: name, Address: "127.0.0.2"}
		if group != lock.DefaultGroup {
			node.Meta = map[string]string{store.GroupMeta: group}
		}
		ops = append(ops, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: node}})
		if group == "storage" {
			ops = append(ops, &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: name,
				Service: api.AgentService{ID: "db", Service: "db", Tags: []string{"rebootmgr", "min_passing=249"}}}})
		}
		if seen[group] < 2+scaleAsking {
			kv(keys.RebootRequired(name), "kernel 6.1.0-28")
			if group == lock.DefaultGroup && seen[group]%8 == 7 {
				kv(keys.Disabled(name), "disk swap (by alice on ctl1)")
			}
		}
		seen[group]++
	}
	for _, g := range scaleGroups {
		kv(keys.GroupLimit(g), "2")
	}
	kv(keys.GroupStop("edge"), "kernel rollout paused (by bob on ctl1)")
	for i, g := range scaleGroups {
		rebooting, _ := scaleNode(i)
		preparing, _ := scaleNode(i + len(scaleGroups))
		kv(keys.GroupLock(g), string(scaleLock(t, now, lock.Holder{Node: rebooting, Phase: lock.Rebooting}, lock.Holder{Node: preparing, Phase: lock.Preparing})))
	}
	for len(ops) > 0 {
		n := min(len(ops), 64)
		ok, resp, _, err := agent.Client.Txn().Txn(ops[:n], nil)
		if err != nil || !ok {
			t.Fatalf("writing the fleet: %v %+v", err, resp)
		}
		ops = ops[n:]
	}
}

// scaleLock is a lock record held by holders since a few minutes before now.
func scaleLock(t testing.TB, now time.Time, holders ...lock.Holder) []byte {
	t.Helper()
	rec := lock.Record{Version: lock.Version}
	for _, h := range holders {
		h.Since = now.Add(-3 * time.Minute)
		h.RebootStarted = h.Since
		var err error
		if rec, err = rec.Acquire(h, len(holders)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// shown is how many rows of the nodes' table the page shows with the filter id set to value.
func shown(t *testing.T, ctx context.Context, id, value string) int {
	t.Helper()
	var n int
	set := fmt.Sprintf(`(function () { var s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("input")); return s.value; })()`, id, value)
	var got string
	if err := chromedp.Run(ctx, chromedp.Evaluate(set, &got),
		chromedp.Evaluate(`document.querySelectorAll("#nodes tbody tr:not([hidden])").length`, &n)); err != nil {
		t.Fatal(err)
	}
	if got != value {
		t.Fatalf("the filter %s offers no %q", id, value)
	}
	return n
}

// TestWebAtScale: at 1,000 nodes (their records in a real Consul), the page loads in a real
// browser with every node's row, filters by group, phase and the gate that holds a node back,
// and shows a node's change of phase in Consul within a second, as an update of a few rows.
func TestWebAtScale(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	now := time.Now()
	start := time.Now()
	scaleFleet(t, agent, now)
	t.Logf("%d nodes written in %s", scaleNodes, time.Since(start).Round(time.Millisecond))
	v := serve(t, agent)
	ctx := browser(t)
	if err := chromedp.Run(ctx); err != nil { // the browser starts
		t.Fatal(err)
	}
	start = time.Now()
	rows := `document.querySelectorAll("#nodes tbody tr").length`
	// The agent's own node is in the catalog too.
	all := fmt.Sprintf(`%s === %d`, rows, scaleNodes+1)
	if err := chromedp.Run(ctx, chromedp.Navigate(v.url+"/"), chromedp.Poll(all, nil, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	t.Logf("the page shows %d nodes %s after it was asked for", scaleNodes, time.Since(start).Round(time.Millisecond))

	perGroup := scaleNodes / len(scaleGroups)
	for _, tc := range []struct {
		filter, value string
		want          int
	}{
		{"f-group", "compute", perGroup},
		{"f-group", "", scaleNodes + 1},
		{"f-phase", "rebooting", len(scaleGroups)},
		{"f-phase", "preparing", len(scaleGroups)},
		{"f-phase", "", scaleNodes + 1},
		// storage's nodes but its holders: two reboots in flight there leave db 248 of 250
		// (each holder counts the other only); health says so of a node that does not ask too.
		{"f-gate", "health", perGroup - 2},
		{"f-gate", "disabled", scaleAsking / 8},
		// edge's nodes but the one rebooting, which finishes under a stop flag.
		{"f-gate", "stop", perGroup - 1},
	} {
		if got := shown(t, ctx, tc.filter, tc.value); got != tc.want {
			t.Errorf("%s=%q shows %d nodes, want %d", tc.filter, tc.value, got, tc.want)
		}
	}
	if got := shown(t, ctx, "f-gate", ""); got != scaleNodes+1 {
		t.Fatalf("every filter cleared shows %d nodes", got)
	}

	// compute's preparing node reboots: within a second the page shows it, and the filter on
	// rebooting, set, shows one more.
	s := updates(t, v.url, "")
	defer s.stop()
	s.next(t) // the whole state
	if n := shown(t, ctx, "f-phase", "rebooting"); n != len(scaleGroups) {
		t.Fatalf("%d rebooting", n)
	}
	rebooting, _ := scaleNode(1)
	preparing, _ := scaleNode(1 + len(scaleGroups))
	phase := fmt.Sprintf(`document.querySelector("#node-%s .phase").textContent === "rebooting"`, preparing)
	written := time.Now()
	data := scaleLock(t, now, lock.Holder{Node: rebooting, Phase: lock.Rebooting}, lock.Holder{Node: preparing, Phase: lock.Rebooting})
	if _, err := agent.Client.KV().Put(&api.KVPair{Key: store.Keys{Prefix: store.DefaultPrefix}.GroupLock("compute"), Value: data}, nil); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, time.Second)
	err := chromedp.Run(wait, chromedp.Poll(phase, nil, chromedp.WithPollingInterval(10*time.Millisecond)))
	cancel()
	if err != nil {
		u := s.next(t)
		t.Fatalf("%s's phase is not rebooting on the page within a second of its write (%s; the update was sent %s after it): %v", preparing, time.Since(written), u.arrived.Sub(written), err)
	}
	t.Logf("%s rebooting on the page %s after its write", preparing, time.Since(written).Round(time.Millisecond))
	var visible int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("#nodes tbody tr:not([hidden])").length`, &visible)); err != nil {
		t.Fatal(err)
	}
	if visible != len(scaleGroups)+1 {
		t.Fatalf("the filter on rebooting shows %d nodes after the change, want %d", visible, len(scaleGroups)+1)
	}
	u := s.next(t)
	t.Logf("the update of that change: %d bytes, %d node rows, %d group rows, %d timeline rows, sent %s after the write",
		u.bytes, len(u.Rows["node"]), len(u.Rows["group"]), len(u.Rows["tl"]), u.arrived.Sub(written).Round(time.Millisecond))
	if u.Full || u.Rows["node"][preparing] == "" {
		t.Fatalf("the change came as full %v, rows %v", u.Full, keys(u.Rows))
	}
}
