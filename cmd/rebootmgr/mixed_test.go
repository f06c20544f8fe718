package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestPythonHolderHoldsEveryGate: a node still running the Python rebootmgr that holds its
// session lock (it prepares) or has its marker set (it reboots), without a group or in this
// node's group (default included), holds this node's lock: reboot, its dry run and check exit
// 4 and name the key, status blocks the node at the lock and shows the holder in its group.
// Once the Python node is done, the node reboots. Another group's Python node holds nothing.
func TestPythonHolderHoldsEveryGate(t *testing.T) {
	tests := []struct {
		name string
		// group is the node's (its agent's meta); pyGroup the Python node's --group.
		group, pyGroup string
		session        bool
		holds          bool
	}{
		{name: "marker of no group", group: "default", holds: true},
		{name: "marker of no group, node in a group", group: "compute", holds: true},
		{name: "marker of the group", group: "compute", pyGroup: "compute", holds: true},
		{name: "marker of the default group", group: "default", pyGroup: "default", holds: true},
		{name: "session lock of no group", group: "default", session: true, holds: true},
		{name: "session lock of no group, node in a group", group: "compute", session: true, holds: true},
		{name: "session lock of the group", group: "compute", pyGroup: "compute", session: true, holds: true},
		{name: "session lock of the default group", group: "default", pyGroup: "default", session: true, holds: true},
		{name: "marker of another group", group: "compute", pyGroup: "ceph"},
		{name: "session lock of another group", group: "compute", pyGroup: "ceph", session: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var meta []string
			if tt.group != "default" {
				meta = []string{"-node-meta", "rebootmgr-group:" + tt.group}
			}
			n := newTestNode(t, consultest.Dev(t, "n1", meta...))
			waitGroup(t, n, tt.group)
			py := &pythonNode{t: t, addr: n.agent.HTTPAddr, name: "py-1", group: tt.pyGroup}
			key := py.markerKey()
			done := func() {}
			if tt.session {
				key = py.lockKey()
				preparing, finish := make(chan struct{}), make(chan struct{})
				py.prepare = func() int { close(preparing); <-finish; return 100 } // a pre-boot task fails
				exit := make(chan int, 1)
				go func() { exit <- py.run() }()
				<-preparing
				done = func() {
					close(finish)
					if code := <-exit; code != 100 {
						t.Fatalf("python node exited %d", code)
					}
				}
			} else {
				py.put(key, []byte(py.name), nil)
				done = func() { py.call("DELETE", "/v1/kv/"+key, nil, nil) }
			}
			if !tt.holds {
				n.expect(n.run("reboot"), 0, "reboot started")
				done()
				return
			}
			named := key
			if !tt.session {
				named = key + " = py-1"
			}
			n.expect(n.run("reboot"), exitLockHeld, "the Python rebootmgr holds it", named)
			n.expect(n.run("reboot", "--dry-run"), exitLockHeld, "the Python rebootmgr holds it", named)
			n.expect(n.run("check"), exitLockHeld, "the Python rebootmgr holds the lock", named)
			st := status(t, n)
			for _, node := range st.Nodes {
				if node.Node == "n1" && (node.Blocked == nil || node.Blocked.Gate != fleet.GateLock || !strings.Contains(node.Blocked.Reason, named)) {
					t.Errorf("status: n1 blocked by %+v", node.Blocked)
				}
			}
			for _, g := range st.Groups {
				// A Python holder of no group holds every group.
				if _, ok := g.Python[key]; ok != (g.Name == tt.group || tt.pyGroup == "") {
					t.Errorf("status: group %s shows python holders %v", g.Name, g.Python)
				}
			}
			if n.rebootCount() != 0 || n.get(n.keys().GroupLock(tt.group)) != nil {
				t.Fatal("took the lock while the Python rebootmgr held it")
			}
			done()
			n.expect(n.run("reboot"), 0, "reboot started")
		})
	}
}

// status reads rebootmgr status --json.
func status(t *testing.T, n *testNode) fleet.Status {
	t.Helper()
	r := n.run("status", "--json")
	var st fleet.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status: %s", r)
	}
	return st
}

// waitGroup waits until the catalog gives n's node its group (an agent's node meta reaches the
// catalog a moment after the node).
func waitGroup(t *testing.T, n *testNode, group string) {
	t.Helper()
	var index uint64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		node, meta, err := n.agent.Client.Catalog().Node(n.agent.Node, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		index = meta.LastIndex
		if node != nil && node.Node != nil && (node.Node.Meta[store.GroupMeta] == group || group == store.DefaultGroup && node.Node.Meta[store.GroupMeta] == "") {
			return
		}
	}
	t.Fatalf("node %s never in group %s in the catalog", n.agent.Node, group)
}
