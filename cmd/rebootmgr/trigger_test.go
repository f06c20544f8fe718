package main

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestTriggerWarns: trigger writes the request and warns, on stderr, of what keeps the node from
// acting on it: the fleet's or its group's stop flag, its disabled mark, its daemon down or
// absent; with its daemon running and nothing in the way it warns of nothing.
func TestTriggerWarns(t *testing.T) {
	n := dev(t)
	d := n.startDaemon("--reboot-window", closedWindow())
	waitDaemonCheck(t, n, "the daemon's check passes", func(c *api.HealthCheck) bool { return c.Status == api.HealthPassing })
	_, err := n.agent.Client.Catalog().Register(&api.CatalogRegistration{Node: "n2", Address: "127.0.0.2", NodeMeta: map[string]string{store.GroupMeta: "compute"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	trigger := func(node string, want, notWant []string) {
		t.Helper()
		r := n.run("trigger", node)
		n.expect(r, 0, node)
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("trigger %s does not warn %q:\n%s", node, w, r.stderr)
			}
		}
		for _, w := range notWant {
			if strings.Contains(r.stderr, w) {
				t.Errorf("trigger %s warns %q:\n%s", node, w, r.stderr)
			}
		}
	}
	trigger("n1", nil, []string{"warning:"})
	fleettest.WaitSeen(t, d.Log.Seen("not now"), "the window gate")
	n.expect(n.run("stop", "--reason", "galera upgrade"), 0)
	n.expect(n.run("stop", "--group", "default", "--reason", "rack 4"), 0)
	n.expect(n.run("disable", "n1", "--reason", "disk swap"), 0)
	trigger("n1", []string{
		"warning: the fleet is stopped (galera upgrade", "rebootmgr resume\n",
		"warning: group default is stopped (rack 4", "rebootmgr resume --group default",
		"warning: n1 is disabled (disk swap", "rebootmgr enable n1",
	}, []string{"daemon"})
	d.stop()
	waitDaemonCheck(t, n, "the daemon's check critical", func(c *api.HealthCheck) bool { return c.Status == api.HealthCritical })
	trigger("n1", []string{"warning: n1's daemon is down (stopped at"}, nil)
	// n2's group is compute: the default group's stop is not its own.
	n.expect(n.run("stop", "--group", "compute", "--force"), 0)
	trigger("n2", []string{"group compute is stopped", "rebootmgr resume --group compute", "no rebootmgr daemon has registered on n2"}, []string{"group default"})
	if n.get(n.keys().RebootRequired("n2")) == nil {
		t.Fatal("the request was not written")
	}
}
