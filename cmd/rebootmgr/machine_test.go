package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestActsOnlyAsThisMachine: from a machine that is not the node of the Consul agent it talks to
// (a workstation with CONSUL_HTTP_ADDR pointed at n1's agent), nothing acts as that node here
// unless --node says so: reboot and daemon refuse (exit 64) naming both and how to proceed,
// taking no lock and running nothing; check judges n1 as another node (its reboot-required
// command not run here), saying so; status shows no file of this machine as n1's; trigger and
// disable act on the agent's node, name it, and say that it is not this machine. A host name
// whose short form is the node's is that node.
func TestActsOnlyAsThisMachine(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	n.put(n.keys().RebootRequired("n1"), "kernel")
	writeFile(t, n.trigger, "kernel")
	ran := filepath.Join(n.dir, "command-ran")
	n.host = "ws1.example.com"

	for _, args := range [][]string{{"reboot"}, {"reboot", "--dry-run"}, {"daemon"}} {
		n.expect(n.run(args[0], args[1:]...), exitUsage, "this machine is ws1", "node n1", "--node n1")
	}
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil || n.inMaintenance() {
		t.Fatal("acted as the agent's node on another machine")
	}

	r := n.run("check", "--reboot-required-command", "touch "+ran)
	if !strings.Contains(r.stderr, "n1 is the local consul agent's node, but this machine is ws1: n1 is judged as another node") {
		t.Fatalf("check did not say it judges n1 as another node: %s", r)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("check ran n1's reboot-required command on this machine")
	}
	r = n.run("status", "--json")
	n.expect(r, 0)
	var st struct {
		Nodes []struct {
			Node           string   `json:"node"`
			RebootRequired []string `json:"reboot_required"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	for _, row := range st.Nodes {
		if row.Node == "n1" && slices.Contains(row.RebootRequired, "file") {
			t.Fatalf("status took this machine's reboot-required file for n1's: %+v", row)
		}
	}

	for _, tt := range []struct{ args []string }{{[]string{"trigger"}}, {[]string{"disable", "--reason", "disk swap"}}} {
		r := n.run(tt.args[0], tt.args[1:]...)
		n.expect(r, 0, "n1")
		if !strings.Contains(r.stderr, "n1 is the node of the consul agent rebootmgr talks to, not this machine (ws1)") {
			t.Fatalf("rebootmgr %v did not say it acted on the agent's node: %s", tt.args, r)
		}
	}
	n.expect(n.run("enable"), 0, "enabled n1")

	// --node says it on purpose; a host name whose short form is the node's is the node.
	n.expect(n.run("check", "--node", "n1"), 0)
	n.host = "N1.example.com"
	r = n.run("check")
	n.expect(r, 0, "n1 may reboot now")
	if strings.Contains(r.stderr, "this machine is") {
		t.Fatalf("check took n1 for another machine: %s", r)
	}
	n.host = "ws1"
	n.expect(n.run("reboot", "--node", "n1"), 0, "reboot started")
	if n.rebootCount() != 1 {
		t.Fatalf("reboot --node n1 ran the reboot command %d times", n.rebootCount())
	}
}
