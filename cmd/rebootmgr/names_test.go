package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestBadNames: a node or group name that is not one (or that Consul would clean into another
// key's path) is a usage error in every command that takes one, whether as an argument, a flag
// or its environment variable, and nothing is read into or written to another key. Consul
// knows n2, so that "x/../n2" would pass a look-up in its catalog.
func TestBadNames(t *testing.T) {
	n := dev(t)
	n.agent.RegisterRemote("n2", "nova", nil, "passing")
	n.put(n.keys().RebootRequired("n2"), "kernel")
	n.put(n.keys().Disabled("n2"), "disk swap")
	n.put(n.keys().GroupLimit("compute"), "2")
	before := n.agent.KVState()

	// commands are where a name goes, with "%s" for it; env names an environment variable
	// that takes it instead.
	commands := []struct {
		args []string
		env  string
		// positional: the name is an argument, so an empty one is a name (as a flag it means
		// the default).
		positional bool
	}{
		{args: []string{"stop", "--group", "%s"}},
		{args: []string{"resume", "--group", "%s"}},
		{args: []string{"trigger", "%s", "--force"}, positional: true},
		{args: []string{"trigger", "--node", "%s"}},
		{args: []string{"trigger"}, env: "REBOOTMGR_NODE"},
		{args: []string{"check"}, env: "REBOOTMGR_GROUP"},
		{args: []string{"cancel", "%s"}, positional: true},
		{args: []string{"cancel", "--node", "%s"}},
		{args: []string{"disable", "%s", "--reason", "x"}, positional: true},
		{args: []string{"disable", "%s", "--force"}, positional: true},
		{args: []string{"enable", "%s"}, positional: true},
		{args: []string{"limit", "%s", "3"}, positional: true},
		{args: []string{"limit", "%s"}, positional: true},
		{args: []string{"unlock", "%s"}, positional: true},
		{args: []string{"unlock", "%s", "--force"}, positional: true},
		{args: []string{"unlock", "n2", "--group", "%s", "--force"}},
		{args: []string{"history", "%s"}, positional: true},
		{args: []string{"history", "--group", "%s"}},
		{args: []string{"check", "--node", "%s"}},
		{args: []string{"check", "--group", "%s"}},
		{args: []string{"status", "--node", "%s"}},
		{args: []string{"reboot", "--node", "%s", "--dry-run"}},
		{args: []string{"reboot", "--group", "%s"}},
		{args: []string{"reboot"}, env: "REBOOTMGR_GROUP"},
		{args: []string{"daemon", "--node", "%s"}},
		{args: []string{"daemon", "--group", "%s"}},
	}
	names := []struct {
		name, value string
		// rule is what the message must say is wrong.
		rule string
	}{
		{"dot dot", "..", "steps in the key path"},
		{"up and over", "x/../n2", "only letters, digits"},
		{"a space", "a b", "only letters, digits"},
		{"a newline", "n2\nn3", "only letters, digits"},
		{"empty", "", "empty"},
	}
	for _, c := range commands {
		for _, nm := range names {
			if nm.value == "" && !c.positional {
				continue
			}
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = strings.ReplaceAll(a, "%s", nm.value)
			}
			var environ map[string]string
			if c.env != "" {
				environ = map[string]string{c.env: nm.value}
			}
			name := strings.Join(c.args, " ")
			if c.env != "" {
				name = c.env + " " + name
			}
			t.Run(name+"/"+nm.name, func(t *testing.T) {
				r := n.runWith(t.Context(), environ, &fleettest.Log{}, args[0], args[1:]...)
				mentions := []string{"usage", nm.rule}
				if nm.value != "" {
					mentions = append(mentions, strconv.Quote(nm.value))
				}
				n.expect(r, exitUsage, mentions...)
				if after := n.agent.KVState(); after != before {
					t.Fatalf("keys changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}
	n.expect(n.run("stop", "--prefix", "service/rebootmgr/.."), exitUsage, "--prefix", `"service/rebootmgr/.."`)
	n.expect(n.run("stop", "--prefix", "service/rebootmgr/"), exitUsage, "--prefix")
	if after := n.agent.KVState(); after != before {
		t.Fatalf("keys changed:\nbefore %s\nafter  %s", before, after)
	}
	// Names Consul and hosts use still work.
	n.agent.RegisterRemote("db-3.example.com", "nova", nil, "passing")
	n.expect(n.run("trigger", "db-3.example.com"), 0, "asked db-3.example.com to reboot")
	n.expect(n.run("limit", "compute_2.a", "3", "--force"), 0, "group compute_2.a: 3 at a time")
}

// TestBadNamesFromConsul: a name that comes from Consul (the agent's node name, a node's group
// in its node meta) is checked as well; it is not the operator's usage, so the exit is 1, and the
// message says where the name came from.
func TestBadNamesFromConsul(t *testing.T) {
	n := newTestNode(t, consultest.Dev(t, "n1", "-node-meta", store.GroupMeta+":.."))
	if _, err := n.agent.Client.Catalog().Register(&api.CatalogRegistration{
		Node: "n2", Address: "127.0.0.2", NodeMeta: map[string]string{store.GroupMeta: "x/../y"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	waitNodeMeta(t, n, "n1")
	// Group compute exists: it has a limit.
	n.put(n.keys().GroupLimit("compute"), "1")
	before := n.agent.KVState()
	n.expect(n.run("reboot"), exitError, "node meta "+store.GroupMeta+" of node n1", `group name ".."`)
	n.expect(n.run("check"), exitError, "node meta "+store.GroupMeta+" of node n1", `group name ".."`)
	n.expect(n.run("check", "--node", "n2"), exitError, "node meta "+store.GroupMeta+" of node n2", `group name "x/../y"`)
	n.expect(n.run("unlock", "n2", "--force"), exitError, "node meta "+store.GroupMeta+" of node n2", `group name "x/../y"`)
	if after := n.agent.KVState(); after != before {
		t.Fatalf("keys changed:\nbefore %s\nafter  %s", before, after)
	}
	// --group says which group, whatever the node meta.
	n.expect(n.run("reboot", "--group", "compute"), 0, "reboot started")

	odd := newTestNode(t, consultest.Dev(t, "n1 old"))
	odd.expect(odd.run("reboot"), exitError, `the local consul agent's node name "n1 old"`, "only letters")
	odd.expect(odd.run("trigger"), exitError, `the local consul agent's node name "n1 old"`, "only letters")
	if pairs, _, _ := odd.kv().List("", nil); len(pairs) != 0 {
		t.Fatalf("keys written for a bad node name: %v", pairs)
	}
}

// waitNodeMeta waits until the catalog shows node's group meta (an agent syncs it after it
// starts).
func waitNodeMeta(t *testing.T, n *testNode, node string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _, err := n.agent.Client.Catalog().Node(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != nil && got.Node != nil && got.Node.Meta[store.GroupMeta] != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the catalog does not show node meta %s of %s", store.GroupMeta, node)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
