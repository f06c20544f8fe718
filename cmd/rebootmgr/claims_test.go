package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// holdPlace gives node a place in the default group's lock and the fleet's record, as its own
// daemon taking one would (a reboot in flight on a node with no daemon).
func holdPlace(t testing.TB, n *testNode, node string) {
	t.Helper()
	changeLock(t, n, func(v place.View) (place.Change, error) {
		rec, err := v.Lock.Acquire(lock.Holder{Node: node, Phase: lock.Rebooting, Since: time.Now()}, 10)
		fleet := v.Fleet.With(node, v.Group)
		return place.Change{Lock: rec, Fleet: &fleet}, err
	})
}

// TestScarceNodeGoesFirst: a controller (galera max_failing=0: one at a time) and a compute both
// wait for room in quobyte (max_failing=1 of four: two at a time), full with two reboots in
// flight, under the limit auto. The controller claims the room; when a reboot ends, the compute
// leaves the place to it, even while the controller's daemon is dead (it is the claimant's until
// its claim lapses), and the controller takes it once its daemon is back. A daemon stopped
// cleanly takes its claim away. The compute never takes a place the rules leave no room for.
func TestScarceNodeGoesFirst(t *testing.T) {
	nodes := cluster(t, []string{"", "", "", ""})
	h1, h2, ctl, cmp := nodes[0], nodes[1], nodes[2], nodes[3]
	h1.expect(h1.run("limit", "default", "auto"), 0)
	for _, n := range nodes {
		n.agent.RegisterService("quobyte", []string{"rebootmgr", "max_failing=1"}, "passing")
	}
	ctl.agent.RegisterService("galera", []string{"rebootmgr", "max_failing=0"}, "passing")
	for _, n := range []*testNode{ctl, cmp} {
		for _, o := range nodes {
			n.agent.WaitCheck(o.agent.Node, "quobyte", consultest.ServiceCheckID("quobyte"), "passing")
		}
	}
	ctl.agent.WaitCheck(ctl.agent.Node, "galera", consultest.ServiceCheckID("galera"), "passing")
	holdPlace(t, h1, h1.agent.Node)
	holdPlace(t, h1, h2.agent.Node)

	ctl.put(ctl.keys().RebootRequired(ctl.agent.Node), "")
	cmp.put(cmp.keys().RebootRequired(cmp.agent.Node), "")
	cmpDaemon := cmp.startDaemon()
	fleettest.WaitSeen(t, cmpDaemon.Log.Seen("waiting for health"), "the compute waiting for room")
	claimed := func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		p, meta, err := h1.agent.Client.KV().Get(h1.keys().Claims(), q)
		if err != nil || p == nil {
			return false, meta, err
		}
		c, err := lock.DecodeClaims(p.Value)
		if err != nil {
			return false, meta, err
		}
		_, ok := c.Of(ctl.agent.Node)
		return ok, meta, nil
	}
	unclaimed := func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		ok, meta, err := claimed(q)
		return !ok, meta, err
	}

	// The controller claims the room; a daemon stopped cleanly takes its claim away.
	ctlDaemon := ctl.startDaemon()
	waitUntil(t, 30*time.Second, func() string { return "the controller never claimed room" }, claimed)
	ctlDaemon.stop()
	waitUntil(t, 30*time.Second, func() string { return "the claim of a daemon stopped cleanly stayed" }, unclaimed)

	// It claims again, and its daemon is killed: its claim stays. h1's reboot ends: the compute
	// would fit, and yields.
	killed := ctl.startDaemonProc(fleettest.Build(t, false))
	waitUntil(t, 30*time.Second, func() string { return "the controller never claimed room" }, claimed)
	if _, ok := h1.lockRecord().Holder(ctl.agent.Node); ok {
		t.Fatal("the controller took a place quobyte has no room for")
	}
	killed.Kill9()
	releaseHolder(t, h1, h1.agent.Node)
	fleettest.WaitSeen(t, cmpDaemon.Log.Seen("waits for room in quobyte"), "the compute yielding to the controller")
	if _, ok := h1.lockRecord().Holder(cmp.agent.Node); ok {
		t.Fatal("the compute took the place the controller claims")
	}
	// check and status say so, as the daemon does.
	cmp.expect(cmp.run("check"), exitLockHeld, "waits for room in quobyte")
	cmp.expect(cmp.run("status"), 0, "waits for room in quobyte")

	// The controller's daemon is back: it takes the place, and its claim goes.
	waits := cmpDaemon.Log.Count("waiting for health")
	ctlDaemon = ctl.startDaemon()
	fleettest.WaitSeen(t, ctlDaemon.Log.Seen(`msg="reboot lock taken"`), "the controller taking the place")
	waitUntil(t, 30*time.Second, func() string { return "the controller's claim stayed" }, unclaimed)
	// The compute looks again (the claims changed), and quobyte is full.
	fleettest.WaitSeen(t, cmpDaemon.Log.SeenN("waiting for health", waits+1), "the compute waiting for room again")
	rec := h1.lockRecord()
	if _, ok := rec.Holder(cmp.agent.Node); ok || len(rec.Holders) != 2 {
		t.Fatalf("holders: %+v, want h2 and the controller", rec.Holders)
	}
}

// TestClaimsUnderPolicies: under the shipped daemon policy a node writes and takes away its claim
// of room, and every node reads the claims with the View; under a policy from before the claims
// (rebootmgr 0.1.0's) the write is refused with an error that says so, and the View still reads.
func TestClaimsUnderPolicies(t *testing.T) {
	now := time.Now().UTC()
	cl := lock.Claim{Node: "n1", AtOnce: 1, Services: []string{"quobyte"}, Seen: []string{"n2"}, Judged: now, Until: now.Add(10 * time.Minute)}
	for _, tt := range []struct {
		name   string
		policy string
		writes bool
	}{
		{"the shipped policy", policy(t, "rebootmgr-daemon.hcl", "n1"), true},
		{"a policy from before the claims", oldDaemonPolicy(t, "n1"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			agent := consultest.DevACL(t, "n1")
			n := newTestNode(t, agent)
			cfg := api.DefaultConfig()
			cfg.Address, cfg.Token = agent.HTTPAddr, aclToken(t, agent, tt.policy)
			client, err := api.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := &store.Consul{Client: client, Keys: n.keys()}
			err = s.ChangeClaims(t.Context(), func(c lock.Claims) (lock.Claims, error) { return c.With(cl) })
			if (err == nil) != tt.writes || (err != nil && !strings.Contains(err.Error(), "Permission denied")) {
				t.Fatalf("claim written: %v, want %v", err, tt.writes)
			}
			v, err := s.View(t.Context())
			if err != nil {
				t.Fatalf("the View under %s: %v", tt.name, err)
			}
			if _, ok := v.Claims.Of("n1"); ok != tt.writes {
				t.Fatalf("claims in the View: %+v", v.Claims)
			}
			if tt.writes {
				if err := s.ChangeClaims(t.Context(), func(c lock.Claims) (lock.Claims, error) { return c.Without("n1"), nil }); err != nil {
					t.Fatal(err)
				}
				if n.get(n.keys().Claims()) != nil {
					t.Fatal("the claims key stayed once its last claim was taken away")
				}
			}
		})
	}
}
