package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestFullReboot is the whole pipeline: gates, lock, pre-boot tasks, reboot, and after the new
// boot the post-boot tasks, maintenance ended, request deleted, lock released.
func TestFullReboot(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	order := filepath.Join(n.dir, "order")
	n.task("pre", "10-evacuate", `echo "pre $REBOOTMGR_NODE $REBOOTMGR_PHASE $REBOOTMGR_DRY_RUN" >> `+order)
	n.task("post", "10-enable", `echo "post $REBOOTMGR_NODE $REBOOTMGR_PHASE $REBOOTMGR_DRY_RUN" >> `+order)
	n.put(n.keys().RebootRequired("n1"), "")

	r := n.run("reboot", "--check-triggers")
	n.expect(r, 0, "reboot started")
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
	h := n.holder("n1")
	if h.Phase != lock.Rebooting || h.BootID != "boot-1" || h.RebootStarted.IsZero() || h.TriggerIndex == 0 || !h.Deadline.Equal(h.RebootStarted.Add(30*time.Minute)) {
		t.Fatalf("lock after the reboot command: %+v", h)
	}
	if !n.inMaintenance() {
		t.Fatal("node not in maintenance while rebooting")
	}

	n.boot()
	r = n.run("reboot", "--check-triggers")
	n.expect(r, 0, "reboot finished")
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
	if pair := n.get(n.keys().Lock()); pair != nil {
		t.Fatalf("lock not released: %s", pair.Value)
	}
	if n.inMaintenance() {
		t.Fatal("maintenance not ended")
	}
	if n.get(n.keys().RebootRequired("n1")) != nil {
		t.Fatal("reboot_required key not deleted")
	}
	data, _ := os.ReadFile(order)
	if want := "pre n1 pre 0\npost n1 post 0\n"; string(data) != want {
		t.Fatalf("tasks ran:\n%s\nwant:\n%s", data, want)
	}

	// Nothing requested any more: the next run does nothing.
	n.expect(n.run("reboot", "--check-triggers"), 0, "no reboot required")
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
}

func TestTriggers(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(n *testNode)
		reboots int
		say     string
	}{
		{"nothing requested", func(n *testNode) {}, 0, "no reboot required"},
		{"file", func(n *testNode) { writeFile(t, n.trigger, "") }, 1, "reboot started"},
		{"key with an odd value", func(n *testNode) { n.put(n.keys().RebootRequired("n1"), "\x00 odd") }, 1, "reboot started"},
		{"another node's key", func(n *testNode) { n.put(n.keys().RebootRequired("n2"), "") }, 0, "no reboot required"},
	}
	n := dev(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanKV(t, n)
			before := n.rebootCount()
			tt.setup(n)
			n.expect(n.run("reboot", "--check-triggers"), 0, tt.say)
			if got := n.rebootCount() - before; got != tt.reboots {
				t.Fatalf("reboots = %d, want %d", got, tt.reboots)
			}
			os.Remove(n.trigger)
		})
	}
}

// TestTriggerFileNewerThanTheRebootStays: a request written after the reboot started is a
// new request and survives the completion of the one before.
func TestTriggerFileNewerThanTheRebootStays(t *testing.T) {
	n := dev(t)
	writeFile(t, n.trigger, "")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(n.trigger, old, old); err != nil {
		t.Fatal(err)
	}
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
	n.boot()
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
	if _, err := os.Stat(n.trigger); !os.IsNotExist(err) {
		t.Fatalf("trigger file that asked for the reboot not removed: %v", err)
	}

	n.expect(n.run("reboot", "--check-triggers"), 0, "no reboot required")
	writeFile(t, n.trigger, "")
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
	n.boot()
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(n.trigger, future, future); err != nil {
		t.Fatal(err)
	}
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
	if _, err := os.Stat(n.trigger); err != nil {
		t.Fatalf("trigger file written after the reboot started was removed: %v", err)
	}
}

func TestStopFlag(t *testing.T) {
	for _, value := range []string{"", "maintenance window closed (alice)"} {
		t.Run("value "+value, func(t *testing.T) {
			n := dev(t)
			n.put(n.keys().Stop(), value)
			n.expect(n.run("reboot"), exitStopped, "stop flag")
			if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
				t.Fatal("a stopped run touched something")
			}
		})
	}
}

// TestStopFlagKeepsTheLock: a halt leaves everything as it is for the operator to see, and a
// run after the flag is gone starts over with the lock it kept.
func TestStopFlagKeepsTheLock(t *testing.T) {
	n := dev(t)
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() { done <- n.runWith(context.Background(), nil, log, "reboot", "--settle", "1h") }()
	fleettest.WaitSeen(t, log.Seen("settling"), "the run settling")
	n.put(n.keys().Stop(), "halt")
	r := <-done
	n.expect(r, exitStopped, "halt")
	if h := n.holder("n1"); h.Phase != lock.Preparing {
		t.Fatalf("lock after a halt during settle: %+v", n.lockRecord())
	}
	if n.rebootCount() != 0 {
		t.Fatal("rebooted after the stop flag appeared")
	}
	n.kv().Delete(n.keys().Stop(), nil)
	n.expect(n.run("reboot"), 0, "reboot started")
}

func TestStopFlagEndsARunningTask(t *testing.T) {
	n := dev(t)
	pidFile := filepath.Join(n.dir, "pid")
	n.task("pre", "10-hang", "sleep 1000 & echo $! > "+pidFile+"; echo waiting for VMs to leave; wait")
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() { done <- n.runWith(context.Background(), nil, log, "reboot") }()
	fleettest.WaitSeen(t, log.Seen("waiting for VMs to leave"), "the task running")
	n.put(n.keys().Stop(), "")
	r := <-done
	n.expect(r, exitStopped, "stop flag")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted")
	}
	if n.get(n.keys().Disabled("n1")) != nil {
		t.Fatal("a halt marked the node disabled")
	}
	if !strings.Contains(r.stderr, "SIGTERM") {
		t.Fatalf("log does not say the task was ended: %s", r.stderr)
	}
}

func TestDisabled(t *testing.T) {
	n := dev(t)
	n.put(n.keys().Disabled("n1"), "disk replacement pending (bob)")
	n.expect(n.run("reboot"), exitDisabled, "disabled", "disk replacement pending (bob)")
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
		t.Fatal("a disabled node took the lock or rebooted")
	}
}

func TestLockHeldElsewhere(t *testing.T) {
	n := dev(t)
	rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "n7", Phase: lock.Rebooting, Since: time.Now()}, 1)
	data, _ := rec.Encode()
	n.put(n.keys().Lock(), string(data))
	n.expect(n.run("reboot"), exitLockHeld, "n7", "rebooting")
	n.expect(n.run("reboot", "--dry-run"), exitLockHeld, "n7")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted while another node holds the lock")
	}
	if got := n.lockRecord(); len(got.Holders) != 1 || got.Holders[0].Node != "n7" {
		t.Fatalf("lock changed: %+v", got)
	}
}

// TestUnreadableLockRecord: a lock record that is damaged, however slightly, holds every node
// and is never overwritten; the error names the key and what is wrong.
func TestUnreadableLockRecord(t *testing.T) {
	const n7 = `{"node":"n7","phase":"rebooting","since":"2026-01-02T03:04:05Z","updated":"2026-01-02T03:04:05Z"}`
	tests := []struct {
		name, value, mention string
	}{
		{"empty", "", "empty value"},
		{"a name", "n7", "invalid character"},
		{"newer version", `{"version":9,"holders":[]}`, "newer rebootmgr"},
		{"typo in holders", `{"version":1,"holder":[` + n7 + `]}`, `unknown field "holder"`},
		{"holders twice", `{"version":1,"holders":[],"holders":[` + n7 + `]}`, `field "holders" appears twice`},
		{"no holders", `{"version":1}`, `no "holders" field`},
		{"null holders", `{"version":1,"holders":null}`, `"holders" is null`},
		{"trailing data", `{"version":1,"holders":[]}{"version":1,"holders":[` + n7 + `]}`, "trailing data"},
		{"unknown field in a holder", `{"version":1,"holders":[{"node":"n7","phase":"rebooting","boot-id":"x"}]}`, `holders[0]: unknown field "boot-id"`},
	}
	for _, tt := range tests {
		value := tt.value
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			n.put(n.keys().Lock(), value)
			n.expect(n.run("reboot"), exitError, "reboot lock "+n.keys().Lock(), tt.mention)
			if n.rebootCount() != 0 {
				t.Fatal("rebooted with an unreadable lock")
			}
			if got := n.get(n.keys().Lock()); got == nil || string(got.Value) != value {
				t.Fatalf("unreadable lock record was overwritten: %v", got)
			}
		})
	}
}

// TestHealth runs each health rule against a real agent: this node's instance registered
// through its agent, other instances through the catalog.
func TestHealth(t *testing.T) {
	maint := consultest.NodeCheck{CheckID: "_node_maintenance", Status: "critical", Notes: "hardware repair"}
	type remote struct {
		node, status string
		checks       []consultest.NodeCheck
	}
	tests := []struct {
		name    string
		tags    []string
		own     string
		remotes []remote
		code    int
		mention string
	}{
		{"own instance failing", nil, "critical", nil, exitUnhealthy, "on this node"},
		{"own instance warning", []string{"max_failing=3"}, "warning", []remote{{"r2", "passing", nil}}, exitUnhealthy, "warning"},
		{"another instance failing", nil, "passing", []remote{{"r2", "critical", nil}}, exitUnhealthy, "r2"},
		{"another instance warning", nil, "passing", []remote{{"r2", "warning", nil}}, exitUnhealthy, "r2"},
		{"min_passing=2 with one instance", []string{"min_passing=2"}, "passing", nil, exitUnhealthy, "min_passing=2, passing 1/1"},
		{"min_passing=2 with two", []string{"min_passing=2"}, "passing", []remote{{"r2", "passing", nil}}, 0, ""},
		{"min_passing=2 with two, one failing", []string{"min_passing=2"}, "passing", []remote{{"r2", "critical", nil}}, exitUnhealthy, "min_passing=2"},
		{"max_failing=1 at the limit", []string{"max_failing=1"}, "passing", []remote{{"r2", "critical", nil}, {"r3", "passing", nil}}, 0, ""},
		{"max_failing=1 over the limit", []string{"max_failing=1"}, "passing", []remote{{"r2", "critical", nil}, {"r3", "critical", nil}}, exitUnhealthy, "max_failing=1, failing 2/3"},
		{"other node in maintenance", nil, "passing", []remote{{"r2", "passing", []consultest.NodeCheck{maint}}}, exitUnhealthy, "_node_maintenance"},
		{"ignore_maintenance", []string{"ignore_maintenance"}, "passing", []remote{{"r2", "passing", []consultest.NodeCheck{maint}}}, 0, ""},
		{"local_only, another instance failing", []string{"local_only"}, "passing", []remote{{"r2", "critical", nil}}, 0, ""},
		{"local_only, own instance failing", []string{"local_only"}, "critical", []remote{{"r2", "passing", nil}}, exitUnhealthy, "on this node"},
		// A tag that cannot be read is the service's configuration: exit 1, not 2.
		{"local_only with a quorum rule", []string{"local_only", "max_failing=1"}, "passing", nil, exitError, "local_only"},
		{"malformed tag", []string{"min_passing=abc"}, "passing", nil, exitError, `"min_passing=abc"`},
		{"negative count", []string{"max_failing=-2"}, "passing", nil, exitError, `"max_failing=-2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := dev(t)
			n.agent.RegisterService("galera", append([]string{"rebootmgr"}, tt.tags...), tt.own)
			for _, r := range tt.remotes {
				n.agent.RegisterRemote(r.node, "galera", append([]string{"rebootmgr"}, tt.tags...), r.status, r.checks...)
			}
			r := n.run("reboot")
			n.expect(r, tt.code, tt.mention)
			if tt.code != 0 {
				if !strings.Contains(lastLine(r.stderr), "galera") {
					t.Fatalf("reason does not name the service: %s", r)
				}
				if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
					t.Fatal("unhealthy node rebooted or kept the lock")
				}
			}
		})
	}
}

// TestHealthCountsServicesNotInTheCatalogYet: a service registered with the node's agent but
// not (yet) in the catalog, as after an agent that left the cluster starts again (at boot, by
// default), is judged, its own instance missing: the node does not pass for having nothing to
// check.
func TestHealthCountsServicesNotInTheCatalogYet(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	// The agent keeps it; the catalog forgets it until the agent's next full sync (a minute).
	forgetUntilTheNextSync(t, n.agent.Client, n.agent.Node, "galera")
	n.expect(n.run("reboot"), exitUnhealthy, "galera: this node's instance is not in Consul's health catalog")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted with its service not in the catalog")
	}
}

// forgetUntilTheNextSync takes node's instance of service out of the catalog, its agent keeping
// it, until the agent's next full sync puts it back. A new agent's first full sync can come
// after the deregistration and put it back at once (one run in six did so): a blocking read
// of the service for as long as the agent takes to sync after its start (its stagger is a few
// seconds at most on a one-node cluster) sees it come back, and it is taken out again; once a
// full sync is behind it, the next is a minute away.
func forgetUntilTheNextSync(t *testing.T, client *api.Client, node, service string) {
	t.Helper()
	for range 5 {
		if _, err := client.Catalog().Deregister(&api.CatalogDeregistration{Node: node, ServiceID: service}, nil); err != nil {
			t.Fatal(err)
		}
		_, meta, err := client.Catalog().Service(service, "", &api.QueryOptions{RequireConsistent: true})
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := client.Catalog().Service(service, "", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(back) == 0 {
			return
		}
	}
	t.Fatalf("%s's %s kept coming back to the catalog", node, service)
}

// TestHealthIgnoresUntagged: a failing service without the tag rebootmgr does not count.
func TestHealthIgnoresUntagged(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("web", []string{"min_passing=5"}, "critical")
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	n.expect(n.run("reboot"), 0, "reboot started")
}

func TestTasks(t *testing.T) {
	t.Run("order", func(t *testing.T) {
		n := dev(t)
		out := filepath.Join(n.dir, "order")
		for _, name := range []string{"20-b", "10-a", "30-c", ".hidden", "old~", "x.dpkg-old"} {
			n.task("pre", name, "echo "+name+" >> "+out)
		}
		n.expect(n.run("reboot"), 0, "reboot started")
		data, _ := os.ReadFile(out)
		if string(data) != "10-a\n20-b\n30-c\n" {
			t.Fatalf("tasks ran in this order:\n%s", data)
		}
	})
	t.Run("failure disables the node", func(t *testing.T) {
		n := dev(t)
		after := filepath.Join(n.dir, "after")
		n.task("pre", "10-evacuate", "echo 2 VMs still running; exit 1")
		n.task("pre", "20-after", "touch "+after)
		n.expect(n.run("reboot"), exitTaskFailed, "10-evacuate", "2 VMs still running")
		if _, err := os.Stat(after); err == nil {
			t.Fatal("a task after the failed one ran")
		}
		if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
			t.Fatal("rebooted or kept the lock after a task failed")
		}
		mark := n.get(n.keys().Disabled("n1"))
		if mark == nil || !strings.Contains(string(mark.Value), "10-evacuate") {
			t.Fatalf("node not disabled with the reason: %v", mark)
		}
		n.expect(n.run("reboot"), exitDisabled, "10-evacuate")
	})
	t.Run("timeout kills the task and its children", func(t *testing.T) {
		n := dev(t)
		pidFile := filepath.Join(n.dir, "pid")
		n.task("pre", "10-hang", "sleep 1000 & echo $! > "+pidFile+"; sleep 1000")
		n.expect(n.run("reboot", "--task-timeout", "300ms"), exitTaskFailed, "10-hang", "timed out")
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		if pidAlive(strings.TrimSpace(string(data))) {
			t.Fatal("the task's child survived its timeout")
		}
	})
	t.Run("unsafe task refused before anything runs", func(t *testing.T) {
		n := dev(t)
		ran := filepath.Join(n.dir, "ran")
		n.task("pre", "10-ok", "touch "+ran)
		n.task("post", "10-unsafe", "true")
		if err := os.Chmod(filepath.Join(n.tasksDir, "post_boot_tasks", "10-unsafe"), 0o777); err != nil {
			t.Fatal(err)
		}
		n.expect(n.run("reboot"), exitError, "10-unsafe", "writable")
		if _, err := os.Stat(ran); err == nil {
			t.Fatal("a task ran although another was unsafe")
		}
		if n.get(n.keys().Disabled("n1")) != nil || n.get(n.keys().Lock()) != nil {
			t.Fatal("an unsafe task disabled the node or took the lock")
		}
	})
	t.Run("missing tasks directory refused before the lock", func(t *testing.T) {
		n := dev(t)
		missing := filepath.Join(n.dir, "etc-typo")
		n.expect(n.run("reboot", "--tasks-dir", missing), exitError, "tasks directory "+missing+" does not exist")
		if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil || n.get(n.keys().Disabled("n1")) != nil {
			t.Fatal("a missing tasks directory rebooted, took the lock or disabled the node")
		}
	})
	t.Run("not executable", func(t *testing.T) {
		n := dev(t)
		n.task("pre", "10-x", "true")
		os.Chmod(filepath.Join(n.tasksDir, "pre_boot_tasks", "10-x"), 0o644)
		n.expect(n.run("reboot"), exitError, "not executable")
	})
}

func TestPostBootTaskFailureKeepsTheLock(t *testing.T) {
	n := dev(t)
	n.task("post", "10-enable", "echo nova-compute will not start; exit 2")
	n.expect(n.run("reboot"), 0, "reboot started")
	n.boot()
	n.expect(n.run("reboot"), exitTaskFailed, "10-enable", "nova-compute will not start")
	if h := n.holder("n1"); h.Phase != lock.Finishing {
		t.Fatalf("lock after a failed post-boot task: %+v", n.lockRecord())
	}
	if !n.inMaintenance() {
		t.Fatal("maintenance ended although the post-boot part failed")
	}
	if n.get(n.keys().Disabled("n1")) == nil {
		t.Fatal("node not marked disabled")
	}
}

// TestUnhealthyAfterRebootKeepsTheLock: the cluster is not whole yet, so nobody else may
// start; the next run carries on.
func TestUnhealthyAfterRebootKeepsTheLock(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	n.expect(n.run("reboot"), 0, "reboot started")
	n.boot()
	n.agent.SetService("galera", "critical")
	n.expect(n.run("reboot"), exitUnhealthy, "galera")
	if h := n.holder("n1"); h.Phase != lock.Finishing {
		t.Fatalf("lock: %+v", n.lockRecord())
	}
	n.agent.SetService("galera", "passing")
	n.expect(n.run("reboot"), 0, "reboot finished")
	if n.get(n.keys().Lock()) != nil {
		t.Fatal("lock not released")
	}
}

// TestDidNotReboot: a boot id unchanged after the reboot command is a reboot that did not happen
// only once the time a reboot takes has passed; before, reboot and check say that the machine
// may still be on its way down. Either way nothing runs the reboot command again.
func TestDidNotReboot(t *testing.T) {
	n := dev(t)
	n.expect(n.run("reboot"), 0, "reboot started")
	n.expect(n.run("reboot"), exitNotRebooted, "boot id", "has not changed yet", "may still be on its way down")
	r := n.run("check")
	n.expect(r, exitNotRebooted, "has not changed yet")
	if strings.Contains(r.stdout+r.stderr, "did not happen:") || strings.Contains(r.stdout+r.stderr, "did not change") {
		t.Fatalf("check, right after the reboot command, says the reboot did not happen:\n%s", r)
	}
	n.expect(n.run("reboot", "--clock-offset", "10m"), exitNotRebooted, "boot id", "did not change: the reboot did not happen")
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
}

func TestRebootCommandFails(t *testing.T) {
	n := dev(t)
	n.expect(n.run("reboot", "--reboot-command", "echo no permission >&2; exit 1"), exitError, "reboot command failed")
	if h := n.holder("n1"); h.Phase != lock.Rebooting {
		t.Fatalf("lock: %+v", n.lockRecord())
	}
	n.expect(n.run("reboot"), exitNotRebooted, "boot id")
}

func TestDryRun(t *testing.T) {
	n := dev(t)
	out := filepath.Join(n.dir, "tasks")
	n.task("pre", "10-pre", `echo "pre $REBOOTMGR_DRY_RUN" >> `+out)
	n.task("post", "10-post", `echo "post $REBOOTMGR_DRY_RUN" >> `+out)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	indexBefore := kvIndex(t, n)
	n.expect(n.run("reboot", "--dry-run"), 0, "dry run")
	n.expect(n.runWith(context.Background(), map[string]string{"REBOOTMGR_DRY_RUN": "1"}, &fleettest.Log{}, "reboot"), 0, "dry run")
	data, _ := os.ReadFile(out)
	if string(data) != "pre 1\npre 1\n" {
		t.Fatalf("tasks ran:\n%s", data)
	}
	if n.rebootCount() != 0 || n.inMaintenance() {
		t.Fatal("a dry run rebooted or started maintenance")
	}
	if got := kvIndex(t, n); got != indexBefore {
		t.Fatalf("a dry run wrote to the KV store (index %d -> %d)", indexBefore, got)
	}
	n.agent.SetService("galera", "critical")
	n.expect(n.run("reboot", "--dry-run"), exitUnhealthy, "galera")
}

// TestSettleAuto waits for the checks' interval+timeout and then checks again: a check that
// fails during the settle stops the reboot. (The check's timeout is generous: the settle is
// all the time Consul gets to run it and sync its result, on a loaded machine too.)
func TestSettleAuto(t *testing.T) {
	n := dev(t)
	flag := filepath.Join(n.dir, "healthy")
	writeFile(t, flag, "")
	n.agent.RegisterScriptService("quobyte", []string{"rebootmgr"}, "test -e "+flag, "1s", "4s")
	n.agent.WaitCheck("n1", "quobyte", "service:quobyte", "passing")
	n.task("pre", "10-break", "rm "+flag)
	n.expect(n.run("reboot", "--settle", "auto"), exitUnhealthy, "quobyte")
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
		t.Fatal("rebooted or kept the lock")
	}
}

func TestConsulUnreachable(t *testing.T) {
	n := dev(t)
	n.agent.Kill()
	r := n.run("reboot")
	n.expect(r, exitError, n.agent.HTTPAddr)
	if n.rebootCount() != 0 {
		t.Fatal("rebooted without Consul")
	}
}

func TestSecondInstanceRefused(t *testing.T) {
	n := dev(t)
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() { done <- n.runWith(context.Background(), nil, log, "reboot", "--settle", "1h") }()
	fleettest.WaitSeen(t, log.Seen("settling"), "the first run settling")
	n.expect(n.run("reboot"), exitError, "another rebootmgr is running", n.lockFile)
	n.put(n.keys().Stop(), "")
	<-done
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args    []string
		environ map[string]string
		code    int
		says    string
	}{
		{[]string{"reboot", "--no-such-flag"}, nil, exitUsage, ""},
		{[]string{"reboot", "--settle", "soon"}, nil, exitUsage, ""},
		{[]string{"frobnicate"}, nil, exitUsage, ""},
		{[]string{"reboot", "extra"}, nil, exitUsage, ""},
		{[]string{"help"}, nil, exitOK, ""},
		{[]string{"reboot", "-h"}, nil, exitOK, ""},
		// A task timeout of zero or less would leave no time for any task.
		{[]string{"reboot", "--task-timeout", "0"}, nil, exitUsage, "--task-timeout 0s: want a duration above 0"},
		{[]string{"reboot", "--task-timeout", "-1s"}, nil, exitUsage, "--task-timeout -1s"},
		{[]string{"daemon", "--task-timeout", "0s"}, nil, exitUsage, "--task-timeout 0s"},
		{[]string{"reboot"}, map[string]string{"REBOOTMGR_TASK_TIMEOUT": "0"}, exitUsage, `REBOOTMGR_TASK_TIMEOUT="0" in the environment: want a duration above 0`},
	}
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		for k, v := range tt.environ {
			name += " " + k + "=" + v
		}
		t.Run(name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			lookup := func(k string) (string, bool) { v, ok := tt.environ[k]; return v, ok }
			code := run(context.Background(), tt.args, env{lookup: lookup}, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.says) {
				t.Fatalf("exit %d, want %d saying %q; stderr: %s", code, tt.code, tt.says, stderr.String())
			}
		})
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func cleanKV(t *testing.T, n *testNode) {
	t.Helper()
	if _, err := n.kv().DeleteTree("service/rebootmgr", nil); err != nil {
		t.Fatal(err)
	}
}

func kvIndex(t *testing.T, n *testNode) uint64 {
	t.Helper()
	_, meta, err := n.kv().List("service/rebootmgr", nil)
	if err != nil {
		t.Fatal(err)
	}
	return meta.LastIndex
}

func pidAlive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// TestChangesWhilePreparing: what an operator (here, a pre-boot task) changes after the lock
// was taken is seen by the checks after the settle.
func TestChangesWhilePreparing(t *testing.T) {
	consul := consultest.Binary(t)
	tests := []struct {
		name    string
		change  string // consul kv arguments
		code    int
		say     string
		lockSet bool
	}{
		{"lock taken away", "delete service/rebootmgr/lock", exitLockLost, "no longer holds the reboot lock", false},
		{"request withdrawn", "delete service/rebootmgr/n1/reboot_required", 0, "withdrawn", false},
		{"disabled", "put service/rebootmgr/n1/disabled hardware-ticket-42", exitDisabled, "hardware-ticket-42", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			n.put(n.keys().RebootRequired("n1"), "")
			n.task("pre", "10-operator", consul+" kv "+strings.Replace(tt.change, " ", " -http-addr="+n.agent.HTTPAddr+" ", 1))
			n.expect(n.run("reboot", "--check-triggers"), tt.code, tt.say)
			if n.rebootCount() != 0 {
				t.Fatal("rebooted")
			}
			if got := n.get(n.keys().Lock()) != nil; got != tt.lockSet {
				t.Fatalf("lock present = %v, want %v: %+v", got, tt.lockSet, n.lockRecord())
			}
		})
	}
}

// TestShutdownKeepsTheLock: SIGTERM (a cancelled run) ends the running task and keeps the
// lock in phase preparing, exactly as a crash would; the next run starts over with it.
func TestShutdownKeepsTheLock(t *testing.T) {
	n := dev(t)
	n.task("pre", "10-hang", "echo draining; sleep 1000")
	ctx, cancel := context.WithCancel(context.Background())
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() { done <- n.runWith(ctx, nil, log, "reboot") }()
	fleettest.WaitSeen(t, log.Seen("draining"), "the task running")
	cancel()
	r := <-done
	if r.code == 0 {
		t.Fatalf("a cancelled run succeeded: %s", r)
	}
	if h := n.holder("n1"); h.Phase != lock.Preparing {
		t.Fatalf("lock after shutdown: %+v", n.lockRecord())
	}
	if n.get(n.keys().Disabled("n1")) != nil {
		t.Fatal("a shutdown marked the node disabled")
	}
	os.Remove(filepath.Join(n.tasksDir, "pre_boot_tasks", "10-hang"))
	n.expect(n.run("reboot"), 0, "reboot started")
}

// TestDryRunKeepsAHeldLock: a dry run on a node that holds the lock writes nothing, even when
// a gate fails.
func TestDryRunKeepsAHeldLock(t *testing.T) {
	n := dev(t)
	rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing, Since: time.Now()}, 1)
	data, _ := rec.Encode()
	n.put(n.keys().Lock(), string(data))
	n.put(n.keys().Disabled("n1"), "testing")
	n.expect(n.run("reboot", "--dry-run"), exitDisabled, "testing")
	if h := n.holder("n1"); h.Phase != lock.Preparing {
		t.Fatalf("a dry run changed the lock: %+v", n.lockRecord())
	}
}

// TestACLDenied: a token that may read but not write rebootmgr's keys gets an error naming the
// key and the permission, and nothing changes.
func TestACLDenied(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, `
agent_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }
key_prefix "service/rebootmgr/" { policy = "read" }
`))
	n.expect(n.run("reboot"), exitError, "service/rebootmgr/lock", "Permission denied")
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
		t.Fatal("rebooted or wrote the lock without permission")
	}

	t.Setenv("CONSUL_HTTP_TOKEN", "")
	n.expect(n.run("reboot"), exitError, "Permission denied")
}

// aclToken creates a policy with rules and returns the secret of a token that has it.
func aclToken(t testing.TB, agent *consultest.Agent, rules string) string {
	t.Helper()
	policy, _, err := agent.Client.ACL().PolicyCreate(&api.ACLPolicy{Name: fmt.Sprintf("p%d", time.Now().UnixNano()), Rules: rules}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := agent.Client.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return token.SecretID
}
