package main

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestMemberWithADaemonRemembersItself: a node that runs a daemon remembers itself as a member
// of the services it runs, and again when it was forgotten and runs the service once more. So
// when it leaves cleanly, another node counts it as failing, though no idle daemon of another
// node read the service whole since it joined (an idle daemon reads a service only at its turn,
// once every ceil(n/2) ticks).
func TestMemberWithADaemonRemembersItself(t *testing.T) {
	nodes := cluster(t, []string{"", ""})
	n, joiner := nodes[0], nodes[1]
	tags := []string{"rebootmgr", "max_failing=0"}
	n.agent.RegisterService("cassandra", tags, "passing")
	// n's daemon idles with its 5-minute tick: it takes no turn at reading cassandra in this
	// test. The query its health watch left asking returns at the next change of cassandra (a
	// check of n's own), and its watches are held from then on.
	d := n.startDaemon()
	fleettest.WaitSeen(t, d.Log.Seen(`msg="idle: no reboot required"`), "n's daemon idle")
	heard := d.Log.Count("idle, and only the locks or health changed: not evaluating")
	n.agent.SetService("cassandra", "warning")
	fleettest.WaitSeen(t, d.Log.SeenN("idle, and only the locks or health changed: not evaluating", heard+1), "the change heard, and the watches held")
	n.agent.SetService("cassandra", "passing")
	evaluated := d.Log.Count("msg=evaluating")

	// The joiner runs cassandra and a daemon of its own: it is remembered by itself.
	joiner.agent.RegisterService("cassandra", tags, "passing")
	member := n.keys().Member("cassandra", joiner.agent.Node)
	joiner.startDaemon("--interval", "1s")
	waitKey(t, n, member)

	// Its service goes out of the catalog, it is forgotten, and its service comes back, its
	// daemon idle all along: it is remembered again, by its own daemon (n's still holds its
	// watches).
	if err := joiner.agent.Client.Agent().ServiceDeregister("cassandra"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, func() string { return "the joiner's cassandra never left the catalog" }, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		entry, meta, err := n.agent.Client.Catalog().Node(joiner.agent.Node, q)
		return err == nil && entry != nil && entry.Services["cassandra"] == nil, meta, err
	})
	n.expect(n.run("forget", joiner.agent.Node, "cassandra"), 0, "forgot n01 as a member of cassandra")
	joiner.agent.RegisterService("cassandra", tags, "passing")
	waitKey(t, n, member)
	if got := d.Log.Count("msg=evaluating"); got != evaluated {
		t.Fatalf("n's idle daemon evaluated %d times while the joiner joined and came back", got-evaluated)
	}

	// It leaves cleanly. n is asked to reboot: the joiner, gone from the catalog, is a failing
	// instance of cassandra (max_failing=0).
	joiner.agent.Leave()
	waitCatalog(t, n, joiner.agent.Node, true)
	n.put(n.keys().RebootRequired(n.agent.Node), "")
	select {
	case <-d.Log.Seen("gone from Consul's catalog"):
	case <-d.Log.Seen("msg=rebooting"):
	case <-time.After(30 * time.Second):
		t.Fatal("n's daemon neither rebooted nor said the joiner is gone")
	}
	if n.rebootCount() != 0 {
		t.Fatal("n rebooted (max_failing=0) with the joiner gone from the catalog")
	}
}
