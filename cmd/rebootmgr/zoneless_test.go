package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestZoneLessRebootsAlone: in a group bounded per zone, a node of no zone is a zone of its
// own. While one prepares (its pre-boot task holds it there), neither another node of no zone
// nor one of a zone takes a place beside it, though the limit and the bound per zone leave
// room; check and status say why; then each reboots in turn, the node of no zone again beside
// nobody. Daemons on their own agents; a monitor sees every state of the lock.
func TestZoneLessRebootsAlone(t *testing.T) {
	nodes := zonedCluster(t, []string{"compute", "compute", "compute"}, []string{"", "", "rack-a"})
	first, other, zoned := nodes[0], nodes[1], nodes[2]
	first.expect(first.run("limit", "compute", "3", "--per-zone", "3"), 0)
	m := &aloneMonitor{alone: map[string]bool{first.agent.Node: true, other.agent.Node: true}}
	addrs := lockStates(t, nodes, "compute", m.see)
	started, gate := filepath.Join(first.dir, "started"), filepath.Join(first.dir, "go")
	first.task("pre", "10-drain", fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done", started, gate))
	daemons := make([]*daemonRun, len(nodes))
	for i, n := range nodes {
		daemons[i] = n.startDaemon("--consul-addr", addrs[i])
	}

	first.put(first.keys().RebootRequired(first.agent.Node), "")
	waitFile(t, started)
	for _, n := range nodes[1:] {
		n.put(n.keys().RebootRequired(n.agent.Node), "")
	}
	waitLockAndQueue(t, first, "compute", func(rec lock.Record, q lock.Queue) bool {
		for _, n := range nodes[1:] {
			_, holds := rec.Holder(n.agent.Node)
			_, queued := q.Place(n.agent.Node)
			if !holds && !queued {
				return false
			}
		}
		return true
	})
	if rec := lockAt(t, first, "compute"); len(rec.Holders) != 1 {
		t.Fatalf("while %s prepares, the lock holds %s", first.agent.Node, holderNames(rec))
	}
	other.expect(other.run("check"), exitLockHeld, "n00 has no zone", "this node reboots alone, nobody beside it: the limit is per zone and it has no zone")
	zoned.expect(zoned.run("check"), exitLockHeld, "n00 has no zone (node meta rebootmgr-zone), so it is a zone of its own")
	if row := statusOf(t, first, other.agent.Node); !strings.Contains(row.Alone, "it has no zone") || row.Blocked == nil || !strings.Contains(row.Blocked.Reason, "n00 has no zone") {
		t.Fatalf("status of %s, of no zone: alone %q, blocked %+v", other.agent.Node, row.Alone, row.Blocked)
	}
	if row := statusOf(t, first, zoned.agent.Node); row.Alone != "" {
		t.Fatalf("status of %s, of a zone, says it reboots alone: %s", zoned.agent.Node, row.Alone)
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	finished := map[int]bool{}
	for len(finished) < len(nodes) {
		i := waitRebootCount(t, nodes, finished, 1)
		if len(finished) == 0 && i != 0 {
			t.Fatalf("%s rebooted before %s", nodes[i].agent.Node, first.agent.Node)
		}
		daemons[i].stop()
		nodes[i].boot()
		daemons[i] = nodes[i].startDaemon("--consul-addr", addrs[i])
		fleettest.WaitSeen(t, daemons[i].Log.Seen("idle: reboot finished"), "the post-boot part of "+nodes[i].agent.Node)
		finished[i] = true
	}
	m.check(t)
}
