package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestDaemonTriggers: a key or a file starts the pipeline at once, a file too whose
// directories are made after the daemon started (as the kernel hook does, with mkdir -p);
// after the "reboot" the daemon of the next boot finishes the job and goes back to waiting.
func TestDaemonTriggers(t *testing.T) {
	kernelFile := func(n *testNode) string { return filepath.Join(n.dir, "var", "run", "kernel", "reboot-required") }
	tests := []struct {
		name    string
		flags   func(n *testNode) []string
		trigger func(n *testNode)
	}{
		{"key", nil, func(n *testNode) { n.put(n.keys().RebootRequired("n1"), "") }},
		{"file", nil, func(n *testNode) { writeFile(t, n.trigger, "") }},
		{
			"file in directories made after the start",
			func(n *testNode) []string {
				return []string{"--reboot-required-file", kernelFile(n), "--interval", "1h"}
			},
			func(n *testNode) {
				if err := os.MkdirAll(filepath.Dir(kernelFile(n)), 0o755); err != nil {
					n.t.Fatal(err)
				}
				writeFile(n.t, kernelFile(n), "")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			var flags []string
			if tt.flags != nil {
				flags = tt.flags(n)
			}
			d := n.startDaemon(flags...)
			start := time.Now()
			tt.trigger(n)
			fleettest.WaitSeen(t, d.Log.Seen(`msg="reboot required"`), "the pipeline start")
			t.Logf("trigger (%s) to pipeline start: %s", tt.name, time.Since(start))
			fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot")
			if got := n.rebootCount(); got != 1 {
				t.Fatalf("reboot command ran %d times", got)
			}
			d.stop()

			n.boot()
			d = n.startDaemon(flags...)
			fleettest.WaitSeen(t, d.Log.Seen("idle: reboot finished"), "the post-boot part")
			if n.get(n.keys().Lock()) != nil || n.get(n.keys().RebootRequired("n1")) != nil || n.inMaintenance() {
				t.Fatalf("not cleaned up after the reboot: lock %+v", n.lockRecord())
			}
			if _, err := os.Stat(n.trigger); err == nil {
				t.Fatal("trigger file not removed")
			}
			// A new request after that is a new reboot.
			tt.trigger(n)
			fleettest.WaitSeen(t, d.Log.SeenN("msg=rebooting", 1), "the second reboot")
			if got := n.rebootCount(); got != 2 {
				t.Fatalf("reboot command ran %d times", got)
			}
		})
	}
}

// TestDaemonIdleNeverReboots: events without a request evaluate, and do nothing; a change of
// health does not even evaluate (nothing asks the node to reboot, and health cannot).
func TestDaemonIdleNeverReboots(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	d := n.startDaemon()
	n.agent.SetService("galera", "critical")
	fleettest.WaitSeen(t, d.Log.Seen("idle, and only the locks or health changed: not evaluating"), "a health event heard, and not evaluated")
	n.put(n.keys().Disabled("n1"), "x")
	fleettest.WaitSeen(t, d.Log.Seen("sources=[disabled-key]"), "an evaluation on the disabled key")
	n.put(n.keys().RebootRequired("n2"), "")
	writeFile(t, filepath.Join(filepath.Dir(n.trigger), "unrelated"), "")
	d.stop()
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
		t.Fatal("an idle daemon rebooted or took the lock")
	}
}

// TestDaemonStopKey: the stop key ends a running task and prevents the reboot; the lock
// stays; once the key is gone the daemon carries on from the start.
func TestDaemonStopKey(t *testing.T) {
	n := dev(t)
	proceed := filepath.Join(n.dir, "vms-gone")
	runs := filepath.Join(n.dir, "runs")
	n.task("pre", "10-evacuate", "echo run >> "+runs+"; echo evacuating; while [ ! -e "+proceed+" ]; do sleep 0.05; done")
	d := n.startDaemon()
	n.put(n.keys().RebootRequired("n1"), "")
	fleettest.WaitSeen(t, d.Log.Seen("evacuating"), "the task running")
	start := time.Now()
	n.put(n.keys().Stop(), "storage maintenance (carol)")
	fleettest.WaitSeen(t, d.Log.Seen("halted"), "the halt")
	t.Logf("stop key to halt: %s", time.Since(start))
	if !strings.Contains(d.Log.String(), "SIGTERM") {
		t.Fatal("the running task was not ended")
	}
	if h := n.holder("n1"); h.Phase != lock.Preparing {
		t.Fatalf("lock after the halt: %+v", n.lockRecord())
	}
	if n.rebootCount() != 0 {
		t.Fatal("rebooted after the stop key")
	}

	writeFile(t, proceed, "")
	n.kv().Delete(n.keys().Stop(), nil)
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot after the stop key went away")
	data, _ := os.ReadFile(runs)
	if strings.Count(string(data), "run") != 2 {
		t.Fatalf("the task ran %q times, want twice (once more after the halt)", data)
	}
}

// TestDaemonsRollOneAtATime: three nodes with their own agents and daemons, triggered at the
// same instant, reboot one at a time; each hands over when the one before has finished its
// post-boot part.
func TestDaemonsRollOneAtATime(t *testing.T) {
	server := consultest.Dev(t, "n1")
	nodes := []*testNode{newTestNode(t, server)}
	for _, name := range []string{"n2", "n3"} {
		nodes = append(nodes, newTestNode(t, consultest.Client(t, name, server)))
	}
	daemons := make([]*daemonRun, len(nodes))
	for i, n := range nodes {
		n.agent.RegisterService("gateway", []string{"rebootmgr", "min_passing=2"}, "passing")
		daemons[i] = n.startDaemon()
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.put(n.keys().RebootRequired(n.agent.Node), "") }()
	}
	wg.Wait()

	finished := map[int]bool{}
	var handedOver time.Time
	for len(finished) < len(nodes) {
		// Wait for the next reboot.
		i := waitAnyReboot(t, nodes, finished)
		if !handedOver.IsZero() {
			t.Logf("hand-over: %s from the previous node's release to the next reboot", time.Since(handedOver))
		}
		rec := nodes[0].lockRecord()
		if len(rec.Holders) != 1 || rec.Holders[0].Node != nodes[i].agent.Node {
			t.Fatalf("while %s reboots the lock is %+v", nodes[i].agent.Node, rec)
		}
		for j, n := range nodes {
			if j != i && !finished[j] && n.rebootCount() != 0 {
				t.Fatalf("%s rebooted while %s was rebooting", n.agent.Node, nodes[i].agent.Node)
			}
		}
		// The machine goes down and comes back.
		daemons[i].stop()
		nodes[i].boot()
		daemons[i] = nodes[i].startDaemon()
		fleettest.WaitSeen(t, daemons[i].Log.Seen("idle: reboot finished"), "the post-boot part of "+nodes[i].agent.Node)
		handedOver = time.Now()
		finished[i] = true
	}
	for _, n := range nodes {
		if got := n.rebootCount(); got != 1 {
			t.Fatalf("%s rebooted %d times", n.agent.Node, got)
		}
	}
}

// waitAnyReboot waits until a node not yet finished has run its reboot command.
func waitAnyReboot(t *testing.T, nodes []*testNode, finished map[int]bool) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range nodes {
			if !finished[i] && n.rebootCount() > 0 {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no node rebooted")
	return -1
}

// TestDaemonKill9: a crash at any point resumes from the lock record: before the reboot the
// node starts over (keeping the lock, so nobody else moves); after it, the post-boot part.
func TestDaemonKill9(t *testing.T) {
	bin := fleettest.Build(t, true)
	n := dev(t)
	proceed := filepath.Join(n.dir, "proceed")
	n.task("pre", "10-drain", "echo draining; while [ ! -e "+proceed+" ]; do sleep 0.05; done")
	d := n.startDaemonProc(bin)
	n.put(n.keys().RebootRequired("n1"), "")
	fleettest.WaitSeen(t, d.Log.Seen("draining"), "the task running")
	d.Kill9()
	if h := n.holder("n1"); h.Phase != lock.Preparing {
		t.Fatalf("lock after kill -9 while preparing: %+v", n.lockRecord())
	}
	// Another node cannot start in between.
	n.agent.RegisterRemote("n2", "web", nil, "passing")
	other := newTestNode(t, n.agent)
	other.expect(other.run("reboot", "--dry-run", "--node", "n2"), exitLockHeld, "n1")

	writeFile(t, proceed, "")
	d = n.startDaemonProc(bin)
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot after the restart")
	d.Kill9()
	if h := n.holder("n1"); h.Phase != lock.Rebooting {
		t.Fatalf("lock after kill -9 after the reboot command: %+v", n.lockRecord())
	}
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}

	n.boot()
	d = n.startDaemonProc(bin)
	fleettest.WaitSeen(t, d.Log.Seen("idle: reboot finished"), "the post-boot part")
	if n.get(n.keys().Lock()) != nil {
		t.Fatal("lock not released")
	}
}

// TestDaemonDidNotReboot: the reboot command "succeeds" but the machine stays up: the daemon
// gives up after --reboot-timeout, and the next one reports it once and never reboots again.
func TestDaemonDidNotReboot(t *testing.T) {
	n := dev(t)
	d := n.daemonAfterARebootThatDidNotHappen()
	writeFile(t, n.trigger, "")
	fleettest.WaitSeen(t, d.Log.Seen("sources=[reboot-required-file]"), "an evaluation on the file")
	d.stop()
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
	if c := strings.Count(d.Log.String(), "has not changed yet"); c != 1 {
		t.Fatalf("the did-not-reboot reason was logged %d times, want once", c)
	}
}

// daemonAfterARebootThatDidNotHappen asks n to reboot; its reboot command "succeeds" but the
// machine stays up: the daemon gives up after --reboot-timeout, and the next one, returned,
// reports that the node did not reboot.
func (n *testNode) daemonAfterARebootThatDidNotHappen() *daemonRun {
	n.t.Helper()
	d := n.startDaemon("--reboot-timeout", "200ms")
	n.put(n.keys().RebootRequired("n1"), "")
	r := <-d.done
	d.done <- r
	n.expect(r, exitError, "still running after the reboot command")
	d = n.startDaemon()
	fleettest.WaitSeen(n.t, d.Log.Seen("waiting for an operator"), "the report")
	return d
}

func TestDaemonSecondInstanceRefused(t *testing.T) {
	n := dev(t)
	n.startDaemon()
	n.expect(n.run("daemon"), exitError, "another rebootmgr is running")
}

// TestDaemonConsulRestart: while the agent is away nothing reboots; after it is back (a dev
// agent comes back empty, so every index goes backwards) the daemon recovers by itself.
func TestDaemonConsulRestart(t *testing.T) {
	n := dev(t)
	d := n.startDaemon()
	n.agent.Kill()
	writeFile(t, n.trigger, "")
	fleettest.WaitSeen(t, d.Log.Seen("error, retrying"), "the daemon noticing Consul is away")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted while Consul was away")
	}
	n.agent.Start()
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot after Consul came back")
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
}

// TestDaemonWaitsForHealthAfterBoot: after the boot the daemon keeps the lock while a check
// fails and finishes the moment it passes, on the health event.
func TestDaemonWaitsForHealthAfterBoot(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("rabbitmq", []string{"rebootmgr"}, "passing")
	d := n.startDaemon()
	n.put(n.keys().RebootRequired("n1"), "")
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot")
	d.stop()

	n.boot()
	n.agent.SetService("rabbitmq", "critical")
	d = n.startDaemon()
	fleettest.WaitSeen(t, d.Log.Seen("waiting for health"), "the daemon waiting for health")
	if h := n.holder("n1"); h.Phase != lock.Finishing {
		t.Fatalf("lock while waiting for health after the boot: %+v", n.lockRecord())
	}
	n.agent.SetService("rabbitmq", "passing")
	fleettest.WaitSeen(t, d.Log.Seen("idle: reboot finished"), "the post-boot part")
	if n.get(n.keys().Lock()) != nil {
		t.Fatal("lock not released")
	}
}

// TestDaemonStaysGreenOnEvents: a daemon staying green looks at what its watches report: a
// check that fails is heard at its event and stops the run before the lock; a stop flag set
// while it stays green halts it at the stop key's event.
func TestDaemonStaysGreenOnEvents(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	d := n.startDaemon("--stay-green", "1h")
	n.put(n.keys().RebootRequired("n1"), "")
	fleettest.WaitSeen(t, d.Log.Seen(`mode="at each change the watches report"`), "the wait for green, on the watches")
	if n.get(n.keys().Lock()) != nil {
		t.Fatal("the lock was taken before the checks stayed green")
	}
	start := time.Now()
	n.agent.SetService("galera", "critical")
	fleettest.WaitSeen(t, d.Log.Seen("while staying green"), "the failing check heard")
	t.Logf("check failing to the run stopped: %s", time.Since(start))

	// Passing again, it stays green from the start, until the stop flag.
	n.agent.SetService("galera", "passing")
	fleettest.WaitSeen(t, d.Log.SeenN(`mode="at each change the watches report"`, 1), "the wait for green again")
	start = time.Now()
	n.put(n.keys().Stop(), "storage maintenance (carol)")
	fleettest.WaitSeen(t, d.Log.Seen("halted"), "the halt")
	t.Logf("stop key to halt: %s", time.Since(start))
	if n.get(n.keys().Lock()) != nil || n.rebootCount() != 0 {
		t.Fatal("rebooted or took the lock")
	}
}
