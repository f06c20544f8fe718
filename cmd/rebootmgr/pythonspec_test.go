package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// pySpec is one case of the Python rebootmgr's own test suite (its tests/, 0.0.32), translated
// to rebootmgr: its hosts consul1 (this node) to consul3, its keys and flags mapped as the
// migration section's tables say. Where rebootmgr does otherwise by design, differs says how,
// and docs/migration.md says why.
type pySpec struct {
	// py is the Python test: file::name.
	py string
	// group puts this node in a group (the Python node's --group or config "group": its node
	// meta rebootmgr-group here).
	group string
	// after runs the case on this node after its reboot (the Python reboot_in_progress naming
	// it): a first run reboots it, then it boots (unless sameBoot) before setup.
	after, sameBoot bool
	setup           func(t *testing.T, n *testNode)
	// args are the command and its flags ("reboot" when none).
	args    []string
	code    int
	mention []string
	check   func(t *testing.T, n *testNode, r result)
	differs string
}

// The Python suite's service A: this node's instance passing, and one on each of others.
func serviceA(n *testNode, own []string, others ...pyInstance) {
	n.agent.RegisterService("A", append([]string{"rebootmgr"}, own...), "passing")
	for _, o := range others {
		n.agent.RegisterRemote(o.node, "A", append([]string{"rebootmgr"}, o.tags...), o.status, o.checks...)
	}
}

type pyInstance struct {
	node, status string
	tags         []string
	checks       []consultest.NodeCheck
}

var pyMaint = consultest.NodeCheck{CheckID: "_node_maintenance", Status: "critical", Notes: "maintenance"}

// curl is a task line that sends method with body to the node's agent at key.
func (n *testNode) curl(method, key, body string) string {
	return fmt.Sprintf("curl -sf -X %s --data '%s' http://%s/v1/kv/%s >/dev/null", method, body, n.agent.HTTPAddr, key)
}

func rebooted(want int) func(t *testing.T, n *testNode, r result) {
	return func(t *testing.T, n *testNode, r result) {
		t.Helper()
		if got := n.rebootCount(); got != want {
			t.Fatalf("rebooted %d times, want %d: %s", got, want, r)
		}
	}
}

func pyConfig(n *testNode, value string) { n.put("service/rebootmgr/nodes/consul1/config", value) }

// TestPythonSuite runs the Python rebootmgr's test cases against rebootmgr on a real agent.
func TestPythonSuite(t *testing.T) {
	for _, tt := range append(pySpecsReboot(), pySpecsGates()...) {
		t.Run(tt.py, func(t *testing.T) {
			t.Parallel()
			var extra []string
			if tt.group != "" {
				extra = append(extra, "-node-meta", "rebootmgr-group:"+tt.group)
			}
			n := newTestNode(t, consultest.Dev(t, "consul1", extra...))
			if tt.group != "" {
				waitGroupMeta(t, n, tt.group)
			}
			if tt.after {
				n.expect(n.run("reboot"), 0)
				if !tt.sameBoot {
					n.boot()
				}
			}
			if tt.setup != nil {
				tt.setup(t, n)
			}
			args := tt.args
			if len(args) == 0 {
				args = []string{"reboot"}
			}
			r := n.run(args[0], args[1:]...)
			n.expect(r, tt.code, tt.mention...)
			if tt.check != nil {
				tt.check(t, n, r)
			}
		})
	}
}

// pySpecsReboot: test_reboot, test_post_reboot, test_tasks, test_lock.
func pySpecsReboot() []pySpec {
	return []pySpec{
		{py: "test_reboot::test_reboot_fails_without_config", code: 0, check: rebooted(1),
			differs: "a node needs no configuration key: one without is enabled (104 has no equivalent)"},
		{py: "test_reboot::test_reboot_fails_without_tasks", args: []string{"reboot", "--tasks-dir", "/nonexistent/rebootmgr"},
			code: exitError, mention: []string{"does not exist"}, check: rebooted(0)},
		{py: "test_reboot::test_reboot_succeeds_with_tasks",
			setup: func(t *testing.T, n *testNode) {
				n.task("pre", "00_some_task.sh", "touch "+filepath.Join(n.dir, "ran"))
			},
			code: 0, check: func(t *testing.T, n *testNode, r result) {
				rebooted(1)(t, n, r)
				if _, err := os.Stat(filepath.Join(n.dir, "ran")); err != nil {
					t.Fatal("the pre-boot task did not run")
				}
				if p := n.get("service/rebootmgr/reboot_in_progress"); p == nil || !strings.Contains(string(p.Value), "consul1") {
					t.Fatalf("reboot_in_progress does not name this node: %v", p)
				}
			}},
		{py: "test_reboot::test_dryrun_reboot_succeeds_with_tasks", args: []string{"reboot", "--dry-run"},
			setup: func(t *testing.T, n *testNode) {
				n.task("pre", "00_some_task.sh", "echo $REBOOTMGR_DRY_RUN > "+filepath.Join(n.dir, "dry"))
			},
			code: 0, check: func(t *testing.T, n *testNode, r result) {
				rebooted(0)(t, n, r)
				if data, _ := os.ReadFile(filepath.Join(n.dir, "dry")); strings.TrimSpace(string(data)) != "1" {
					t.Fatalf("the task saw REBOOTMGR_DRY_RUN=%q", data)
				}
				if n.get("service/rebootmgr/reboot_in_progress") != nil {
					t.Fatal("a dry run wrote reboot_in_progress")
				}
			}},
		{py: "test_reboot::test_reboot_fail", args: []string{"reboot", "--reboot-command", "false"}, code: exitError},
		{py: "test_reboot::test_reboot_fails_if_another_reboot_is_in_progress",
			setup: func(t *testing.T, n *testNode) { n.put("service/rebootmgr/reboot_in_progress", "some_hostname") },
			code:  exitLockHeld, mention: []string{"some_hostname"}, check: rebooted(0)},
		{py: "test_reboot::test_reboot_succeeds_if_this_node_is_in_maintenance",
			setup: func(t *testing.T, n *testNode) {
				serviceA(n, nil)
				if err := n.agent.Client.Agent().EnableNodeMaintenance("test"); err != nil {
					t.Fatal(err)
				}
			},
			code: 0, check: rebooted(1)},
		{py: "test_reboot::test_reboot_fails_if_another_node_is_in_maintenance",
			setup: func(t *testing.T, n *testNode) {
				serviceA(n, nil, pyInstance{node: "consul2", status: "passing", checks: []consultest.NodeCheck{pyMaint}}, pyInstance{node: "consul3", status: "passing"})
			},
			code: exitUnhealthy, mention: []string{"_node_maintenance", "consul2"}, check: rebooted(0)},
		{py: "test_reboot::test_reboot_succeeds_if_another_node_is_in_maintenance_but_ignoring",
			setup: func(t *testing.T, n *testNode) {
				serviceA(n, nil, pyInstance{node: "consul2", status: "passing", tags: []string{"ignore_maintenance"}, checks: []consultest.NodeCheck{pyMaint}}, pyInstance{node: "consul3", status: "passing"})
			},
			code: 0, check: func(t *testing.T, n *testNode, r result) {
				rebooted(1)(t, n, r)
				c := n.run("check")
				if !strings.Contains(c.stdout, "instances tagged with other rules than this node's") || !strings.Contains(c.stdout, "consul2: ignore_maintenance") {
					t.Fatalf("check does not show the instance tagged with other rules: %s", c)
				}
			}},

		{py: "test_post_reboot::test_post_reboot_consul_checks_passing", after: true, code: 0, check: finished},
		{py: "test_post_reboot::test_post_reboot_consul_checks_failing", after: true,
			setup: func(t *testing.T, n *testNode) { serviceA(n, nil, pyInstance{node: "consul2", status: "critical"}) },
			code:  exitUnhealthy, mention: []string{"consul2"}, check: holds(lock.Finishing)},
		{py: "test_post_reboot::test_post_reboot_wait_until_healthy_and_are_healthy", after: true, code: 0, check: finished,
			differs: "--post-reboot-wait-until-healthy: what the daemon does; a one-shot reboot exits"},
		{py: "test_post_reboot::test_post_reboot_wait_until_healthy", after: true,
			setup: func(t *testing.T, n *testNode) { serviceA(n, nil, pyInstance{node: "consul2", status: "critical"}) },
			code:  exitUnhealthy, check: againAfter(func(n *testNode) { n.agent.RegisterRemote("consul2", "A", []string{"rebootmgr"}, "passing") }),
			differs: "--post-reboot-wait-until-healthy: the daemon waits on health events; here, a run after the check passes finishes"},
		{py: "test_post_reboot::test_post_reboot_phase_fails_without_tasks", after: true,
			setup: func(t *testing.T, n *testNode) {
				if err := os.RemoveAll(n.tasksDir); err != nil {
					t.Fatal(err)
				}
			},
			code: exitError, mention: []string{"does not exist"}, check: func(t *testing.T, n *testNode, r result) {
				holds(lock.Finishing)(t, n, r)
				if n.get(n.keys().Disabled("consul1")) != nil {
					t.Fatal("a missing tasks directory disabled the node")
				}
				newTestNode(t, n.agent) // the directories again, as the operator makes them
			}},
		{py: "test_post_reboot::test_post_reboot_phase_succeeds_with_tasks", after: true,
			setup: func(t *testing.T, n *testNode) { n.task("post", "50_another_task.sh", "echo 50_another_task.sh ran") },
			code:  0, mention: []string{}, check: finished},
		{py: "test_post_reboot::test_post_reboot_phase_fails_with_uptime", after: true, sameBoot: true,
			code: exitNotRebooted, check: holds(lock.Rebooting),
			differs: "the boot id must change, where the Python rebootmgr looked at an uptime over two hours"},
		{py: "test_post_reboot::test_post_reboot_succeeds_with_current_node_in_maintenance", after: true,
			setup: func(t *testing.T, n *testNode) {
				serviceA(n, nil, pyInstance{node: "consul2", status: "passing"}, pyInstance{node: "consul3", status: "passing"})
			},
			code: 0, check: finished},
		{py: "test_post_reboot::test_post_reboot_fails_with_other_node_in_maintenance", after: true,
			setup: func(t *testing.T, n *testNode) {
				serviceA(n, nil, pyInstance{node: "consul2", status: "passing", checks: []consultest.NodeCheck{pyMaint}}, pyInstance{node: "consul3", status: "passing"})
			},
			code: exitUnhealthy, mention: []string{"_node_maintenance", "consul2"}, check: holds(lock.Finishing)},
		{py: "test_post_reboot::test_post_reboot_succeeds_with_other_node_in_maintenance_but_ignoring", after: true,
			setup: func(t *testing.T, n *testNode) {
				serviceA(n, nil, pyInstance{node: "consul2", status: "passing", tags: []string{"ignore_maintenance"}, checks: []consultest.NodeCheck{pyMaint}}, pyInstance{node: "consul3", status: "passing"})
			},
			code: 0, check: finished},
		{py: "test_post_reboot::test_post_reboot_wait_until_healthy_with_maintenance", after: true,
			setup: func(t *testing.T, n *testNode) {
				serviceA(n, nil, pyInstance{node: "consul2", status: "passing", checks: []consultest.NodeCheck{pyMaint}}, pyInstance{node: "consul3", status: "passing"})
			},
			code: exitUnhealthy, mention: []string{"_node_maintenance", "consul2"},
			check: againAfter(func(n *testNode) {
				if _, err := n.agent.Client.Catalog().Deregister(&api.CatalogDeregistration{Node: "consul2", CheckID: "_node_maintenance"}, nil); err != nil {
					n.t.Fatal(err)
				}
			}),
			differs: "--post-reboot-wait-until-healthy: the daemon waits on health events; here, a run after the maintenance ends finishes"},

		{py: "test_tasks::test_reboot_task_timeout", args: []string{"reboot", "--task-timeout", "300ms"},
			setup: func(t *testing.T, n *testNode) { n.task("pre", "00_some_task.sh", "sleep 1000") },
			code:  exitTaskFailed, mention: []string{"00_some_task.sh", "timed out"}, check: disabledBy("00_some_task.sh")},
		{py: "test_tasks::test_reboot_preboot_task_fails",
			setup: func(t *testing.T, n *testNode) { n.task("pre", "00_some_task.sh", "exit 1") },
			code:  exitTaskFailed, mention: []string{"00_some_task.sh", "failed"}, check: disabledBy("00_some_task.sh"),
			differs: "a failed task disables the node as a timed-out one does (the Python rebootmgr disabled it on a timeout only)"},
		{py: "test_tasks::test_reboot_task_timeout_with_preexisting_config", args: []string{"reboot", "--task-timeout", "300ms"},
			setup: func(t *testing.T, n *testNode) {
				pyConfig(n, `{"enabled": true, "test_preserved": true}`)
				n.task("pre", "00_some_task.sh", "sleep 1000")
			},
			code: exitTaskFailed, mention: []string{"timed out"}, check: func(t *testing.T, n *testNode, r result) {
				disabledBy("00_some_task.sh")(t, n, r)
				if p := n.get("service/rebootmgr/nodes/consul1/config"); p == nil || string(p.Value) != `{"enabled": true, "test_preserved": true}` {
					t.Fatalf("the Python config changed: %v", p)
				}
			},
			differs: "the mark is rebootmgr's own disabled key; the Python config is left as it is"},
		{py: "test_tasks::test_post_reboot_phase_task_timeout", after: true, args: []string{"reboot", "--task-timeout", "300ms"},
			setup: func(t *testing.T, n *testNode) { n.task("post", "50_another_task.sh", "sleep 1000") },
			code:  exitTaskFailed, mention: []string{"50_another_task.sh", "timed out"}, check: disabledBy("50_another_task.sh")},

		{py: "test_lock::test_consul_lock_fails", setup: pythonSessionLock, code: exitLockHeld,
			mention: []string{"service/rebootmgr/lock/.lock"}, check: rebooted(0)},
		{py: "test_lock::test_consul_lock_fails_later",
			setup: func(t *testing.T, n *testNode) {
				n.task("pre", "00_unlock.sh", n.curl("DELETE", "service/rebootmgr/lock", ""))
			},
			code: exitLockLost, check: rebooted(0)},
	}
}

// finished: the node's reboot is finished: its place given back, its maintenance off.
func finished(t *testing.T, n *testNode, r result) {
	t.Helper()
	if h := n.holder("consul1"); h.Phase != "" || n.inMaintenance() {
		t.Fatalf("not finished: phase %q, in maintenance %v: %s", h.Phase, n.inMaintenance(), r)
	}
}

// holds: the node keeps its place in phase.
func holds(phase lock.Phase) func(t *testing.T, n *testNode, r result) {
	return func(t *testing.T, n *testNode, r result) {
		t.Helper()
		if h := n.holder("consul1"); h.Phase != phase {
			t.Fatalf("phase %q, want %q: %s", h.Phase, phase, r)
		}
	}
}

// againAfter: after fix, the next run finishes the reboot.
func againAfter(fix func(n *testNode)) func(t *testing.T, n *testNode, r result) {
	return func(t *testing.T, n *testNode, r result) {
		t.Helper()
		holds(lock.Finishing)(t, n, r)
		fix(n)
		n.expect(n.run("reboot"), 0)
		finished(t, n, r)
	}
}

// disabledBy: the task failed, nothing rebooted, and the node is disabled naming the task.
func disabledBy(task string) func(t *testing.T, n *testNode, r result) {
	return func(t *testing.T, n *testNode, r result) {
		t.Helper()
		mark := n.get(n.keys().Disabled("consul1"))
		if mark == nil || !strings.Contains(string(mark.Value), task) {
			t.Fatalf("not disabled naming %s: %v", task, mark)
		}
		rebooted(map[bool]int{true: 1, false: 0}[n.boots > 1])(t, n, r)
	}
}

// pythonSessionLock holds the Python rebootmgr's session lock, as its consul_lib.Lock does.
func pythonSessionLock(t *testing.T, n *testNode) {
	t.Helper()
	id, _, err := n.agent.Client.Session().Create(&api.SessionEntry{TTL: "600s", Checks: []string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := n.kv().Acquire(&api.KVPair{Key: "service/rebootmgr/lock/.lock", Value: []byte(`{"state": "done"}`), Session: id}, nil)
	if err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
}

// today is the blackout dates around now, whatever the zone.
func today() string {
	now := time.Now()
	var d []string
	for _, off := range []int{-1, 0, 1} {
		d = append(d, now.AddDate(0, 0, off).Format(time.DateOnly))
	}
	return strings.Join(d, ",")
}

// waitGroupMeta waits until the catalog shows this node in group (its agent syncs its node
// meta a moment after it starts).
func waitGroupMeta(t *testing.T, n *testNode, group string) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() string { return "the catalog never showed consul1 in group " + group },
		func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
			node, meta, err := n.agent.Client.Catalog().Node("consul1", q)
			if err != nil {
				return false, nil, err
			}
			return node != nil && node.Node != nil && node.Node.Meta["rebootmgr-group"] == group, meta, nil
		})
}
