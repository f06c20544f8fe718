package main

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestStatusShowsTheDaemon: a daemon registers itself in Consul; status on any node shows it
// running (its status text follows in Consul at once only when its check's state changes: the
// agent syncs an output alone every check_update_interval), judges the node by the settings it published (a window set only on the daemon's
// command line), shows a node that waits for an operator with the command that resolves it,
// and a daemon that stopped.
func TestStatusShowsTheDaemon(t *testing.T) {
	n := dev(t)
	d := n.startDaemon("--reboot-window", closedWindow())
	fleettest.WaitSeen(t, d.Log.Seen("idle: no reboot required"), "the first run")
	waitDaemonCheck(t, n, "the daemon's check passes", func(c *api.HealthCheck) bool { return c.Status == api.HealthPassing })
	row := statusOf(t, n, "n1")
	if !row.InCatalog || !row.Daemon.Enabled || row.Daemon.Version != version || row.Maintenance != nil || row.Operator != nil {
		t.Fatalf("status of an idle node with its daemon: %+v, daemon %+v", row, row.Daemon)
	}
	// status runs without the window; the daemon's published one holds the node.
	n.put(n.keys().RebootRequired("n1"), "kernel")
	fleettest.WaitSeen(t, d.Log.Seen("not now"), "the window gate")
	row = statusOf(t, n, "n1")
	if row.Blocked == nil || row.Blocked.Gate != gate.Window || row.NextWindow == nil {
		t.Fatalf("status judges the node without its daemon's window: %+v", row)
	}
	d.stop()
	waitDaemonCheck(t, n, "the daemon's check critical", func(c *api.HealthCheck) bool { return c.Status == api.HealthCritical })
	if got := statusOf(t, n, "n1").Daemon; got.State != "down" || !strings.HasPrefix(got.Status, "stopped at") {
		t.Fatalf("a daemon stopped cleanly: %+v", got)
	}
	n.expect(n.run("status"), 0, "down")

	// A reboot that did not happen waits for an operator: the daemon's status, its check and
	// status say so, with the command.
	n.expect(n.run("cancel", "n1"), 0)
	d = n.daemonAfterARebootThatDidNotHappen()
	fleettest.WaitSeen(t, d.Log.Seen("to resolve: find why the reboot command did not reboot n1"), "the resolution in the daemon's status")
	waitDaemonCheck(t, n, "the daemon's check in warning", func(c *api.HealthCheck) bool { return c.Status == api.HealthWarning })
	row = statusOf(t, n, "n1")
	if row.Operator == nil || row.Operator.Command != "find why the reboot command did not reboot n1 (journalctl -u rebootmgr), then on n1: rebootmgr unlock n1 --cancel-request --end-maintenance (without --cancel-request, the same reboot starts again at once)" {
		t.Fatalf("status of a node waiting for an operator: %+v", row.Operator)
	}
	n.expect(n.run("status"), 0, "WAITS FOR AN OPERATOR", "run: find why")
	checks, err := n.agent.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks[store.DaemonCheck]; c == nil || !strings.Contains(c.Output, "rebootmgr unlock n1") {
		t.Fatalf("the daemon's check: %+v", c)
	}
}

// TestStatusFlagsANodeConsulDoesNotKnow: a node with a request but no catalog entry is never
// "may reboot now".
func TestStatusFlagsANodeConsulDoesNotKnow(t *testing.T) {
	n := dev(t)
	n.put(n.keys().RebootRequired("ghost"), "")
	row := statusOf(t, n, "ghost")
	if row.InCatalog || row.Daemon != nil {
		t.Fatalf("status of a node Consul does not know: %+v", row)
	}
	n.expect(n.run("status"), 0, "not in Consul's catalog")
}

// waitDaemonCheck waits until the catalog shows n's daemon check as ok says.
func waitDaemonCheck(t *testing.T, n *testNode, what string, ok func(*api.HealthCheck) bool) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() string { return what + ": never happened" }, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		checks, meta, err := n.agent.Client.Health().Checks(store.DaemonService, q)
		if err != nil {
			return false, nil, err
		}
		for _, c := range checks {
			if c.CheckID == store.DaemonCheck && ok(c) {
				return true, meta, nil
			}
		}
		return false, meta, nil
	})
}

// TestDryRunDaemonLeavesTheDaemonsPresence: a daemon --dry-run beside the node's running daemon
// (another lock file) changes nothing in Consul: it does not take the daemon's registration
// over, and its stop does not mark the running daemon as stopped.
func TestDryRunDaemonLeavesTheDaemonsPresence(t *testing.T) {
	n := dev(t)
	n.startDaemon()
	waitDaemonCheck(t, n, "the daemon's check passes", func(c *api.HealthCheck) bool { return c.Status == api.HealthPassing })
	before, _, err := n.agent.Client.Agent().Service(store.DaemonService, nil)
	if err != nil {
		t.Fatal(err)
	}
	dry := n.startDaemon("--dry-run", "--lock-file", filepath.Join(n.dir, "run", "dry-run.lock"), "--reboot-window", closedWindow())
	fleettest.WaitSeen(t, dry.Log.Seen("dry run: not registered"), "the dry run's word that it leaves the daemon's presence alone")
	if r := dry.stop(); r.code != 0 {
		t.Fatalf("the dry run: %s", r)
	}
	// The agent holds a check's state at once: what the dry run did is there when it returned.
	checks, err := n.agent.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks[store.DaemonCheck]; c == nil || c.Status != api.HealthPassing {
		t.Fatalf("the running daemon's check after a dry run stopped: %+v", c)
	}
	after, _, err := n.agent.Client.Agent().Service(store.DaemonService, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(before.Meta, after.Meta) {
		t.Fatalf("the dry run changed the daemon's registration: %v, was %v", after.Meta, before.Meta)
	}
	if row := statusOf(t, n, "n1"); row.Daemon == nil || row.Daemon.State == "down" {
		t.Fatalf("status after a dry run stopped: %+v", row.Daemon)
	}
}
