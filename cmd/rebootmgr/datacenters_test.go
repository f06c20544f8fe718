package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// twoDatacenters are two Consul datacenters joined over the WAN on loopback, each a server
// and a client agent with its node.
type twoDatacenters struct {
	servers [2]*consultest.Agent
	nodes   [2]*testNode
}

func newTwoDatacenters(t *testing.T) *twoDatacenters {
	t.Helper()
	var d twoDatacenters
	d.servers[0] = consultest.WANServer(t, "s1", "dc1", nil)
	d.servers[1] = consultest.WANServer(t, "s2", "dc2", d.servers[0])
	d.nodes[0] = newTestNode(t, consultest.Client(t, "a1", d.servers[0], "-datacenter", "dc1"))
	d.nodes[1] = newTestNode(t, consultest.Client(t, "b1", d.servers[1], "-datacenter", "dc2"))
	d.nodes[0].agent.WaitDatacenters("dc1", "dc2")
	d.nodes[1].agent.WaitDatacenters("dc1", "dc2")
	return &d
}

// stopped is the fleet's stop flag of datacenter i, as its own server holds it ("" when unset).
func (d *twoDatacenters) stopped(i int) string {
	p := d.nodes[i].get(d.nodes[i].keys().Stop())
	if p == nil {
		return ""
	}
	return string(p.Value)
}

// TestAllDatacenters: from one datacenter's agent, stop, status, history, limit and resume act
// on another datacenter's fleet (--datacenter) or on every datacenter's in turn
// (--all-datacenters), saying of each what was done; a datacenter that cannot be reached is
// named with its error, never reported as stopped, and the command exits non-zero.
func TestAllDatacenters(t *testing.T) {
	d := newTwoDatacenters(t)
	op := d.nodes[0]

	r := op.run("stop", "--all-datacenters", "--reason", "core switch swap")
	op.expect(r, 0, "dc1: stopped: core switch swap", "dc2: stopped: core switch swap")
	for i := range d.nodes {
		if !strings.HasPrefix(d.stopped(i), "core switch swap") {
			t.Fatalf("dc%d's stop flag after stop --all-datacenters: %q", i+1, d.stopped(i))
		}
	}

	r = op.run("status", "--all-datacenters", "--json")
	op.expect(r, 0)
	var outcomes []struct {
		Datacenter string
		Result     fleet.Status
		Error      string
	}
	if err := json.Unmarshal([]byte(r.stdout), &outcomes); err != nil {
		t.Fatalf("status --all-datacenters --json: %v\n%s", err, r.stdout)
	}
	if len(outcomes) != 2 || outcomes[0].Datacenter != "dc1" || outcomes[1].Datacenter != "dc2" {
		t.Fatalf("status --all-datacenters --json: %s", r.stdout)
	}
	for _, o := range outcomes {
		if o.Error != "" || o.Result.Stop == nil || !strings.HasPrefix(o.Result.Stop.Value, "core switch swap") {
			t.Fatalf("status of %s: %+v", o.Datacenter, o)
		}
	}
	r = op.run("status", "--datacenter", "dc2")
	op.expect(r, 0, "b1")
	if strings.Contains(r.stdout, "a1") {
		t.Fatalf("dc2's status shows dc1's node a1:\n%s", r.stdout)
	}

	op.expect(op.run("history", "--all-datacenters"), 0, "dc1: group default has no history", "dc2: group default has no history")
	op.expect(op.run("limit", "default", "3", "--all-datacenters"), 0, "dc1: group default: 3", "dc2: group default: 3")
	op.expect(op.run("limit", "default", "--datacenter", "dc2"), 0, "group default: 3")

	// Resuming one datacenter leaves the other stopped.
	op.expect(op.run("resume", "--datacenter", "dc2"), 0, "resumed")
	if d.stopped(0) == "" || d.stopped(1) != "" {
		t.Fatalf("after resume --datacenter dc2: dc1 %q, dc2 %q", d.stopped(0), d.stopped(1))
	}
	op.expect(op.run("resume"), 0, "resumed")

	// dc2 down: dc1 is stopped and says so, dc2 is named with why, and not as stopped.
	d.nodes[1].agent.Kill()
	d.servers[1].Kill()
	r = op.run("stop", "--all-datacenters", "--reason", "dc2 is dark")
	op.expect(r, 1, "dc1: stopped: dc2 is dark", "dc2: failed: ", "failed in 1 of 2 datacenters: dc2")
	if strings.Contains(r.stdout, "dc2: stopped") {
		t.Fatalf("an unreachable datacenter reported as stopped:\n%s", r.stdout)
	}
	if !strings.HasPrefix(d.stopped(0), "dc2 is dark") {
		t.Fatalf("dc1's stop flag: %q", d.stopped(0))
	}
}

// TestDatacenterFlagUsage: --datacenter takes a datacenter's name, and not with
// --all-datacenters; either mistake is a usage error before anything is written.
func TestDatacenterFlagUsage(t *testing.T) {
	n := dev(t)
	for _, args := range [][]string{
		{"--datacenter", "dc1", "--all-datacenters"},
		{"--datacenter", "dc1/../x"},
	} {
		r := n.run("stop", args...)
		n.expect(r, exitUsage, "datacenter")
		if n.get(n.keys().Stop()) != nil {
			t.Fatalf("stop %v wrote the stop flag", args)
		}
	}
}

// TestDaemonRebootsWithOtherDatacenterDown: a daemon reads only its own datacenter, even where
// the settings every command shares name another for the operator commands: another
// datacenter's stop flag does not hold it, and it reboots while that datacenter's servers are
// down.
func TestDaemonRebootsWithOtherDatacenterDown(t *testing.T) {
	d := newTwoDatacenters(t)
	other := d.nodes[1]
	other.put(other.keys().Stop(), "dc2's own maintenance")
	other.agent.Kill()
	d.servers[1].Kill()

	n := d.nodes[0]
	n.put(n.keys().RebootRequired(n.agent.Node), "")
	ctx, cancel := context.WithCancel(t.Context())
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() { done <- n.runWith(ctx, map[string]string{"REBOOTMGR_DATACENTER": "dc2"}, log, "daemon") }()
	t.Cleanup(func() {
		cancel()
		if r := <-done; t.Failed() {
			t.Logf("daemon: %s", r)
		}
	})
	fleettest.WaitSeen(t, log.Seen("msg=rebooting"), "the reboot of a node of dc1 while dc2 is down")
	waitFile(t, n.reboots)
}
