package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
)

var (
	faultSeed   = flag.Int64("fault-seed", -1, "seed of TestFleetFaults (-1: the fixed seeds 1 and 2, as CI runs; 0: one from the clock; the seed is printed)")
	faultEvents = flag.Int("fault-events", 20, "faults TestFleetFaults injects per seed (raise it for a longer run)")
)

// grace is how long before a reboot a gate must have been false for the reboot to count as a
// violation: the pipeline checks every gate right before it reboots, so a change in the last
// moment before is a race no tool can win.
const grace = 1500 * time.Millisecond

// simNode is one machine of the simulated fleet.
type simNode struct {
	*testNode
	name    string
	daemon  *daemonProc
	down    bool
	failing bool // the test made its galera check fail
	reboots int
}

// timeline is when the stop flag and each node's check changed.
type timeline struct {
	stopSince time.Time // zero: not set
	failSince map[string]time.Time
	downSince map[string]time.Time
}

// TestFleetFaults triggers every node at once and, while the fleet rolls, kills daemons, restarts
// agents (the server too), flips the stop flag, fails and heals checks, and makes tasks fail or hang. After every
// step: never more than one lock holder; at every reboot: the lock holds only that node, the
// stop flag was not set, and galera (min_passing=2) had quorum. Once the faults stop, every
// node reboots exactly once and finishes. Reproduce a run with -fault-seed.
func TestFleetFaults(t *testing.T) {
	seeds := []uint64{1, 2}
	switch {
	case *faultSeed == 0:
		seeds = []uint64{uint64(time.Now().UnixNano())}
	case *faultSeed > 0:
		seeds = []uint64{uint64(*faultSeed)}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) { faultRun(t, seed) })
	}
}

func faultRun(t *testing.T, seed uint64) {
	t.Logf("seed %d (go test ./cmd/rebootmgr -run TestFleetFaults -fault-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	bin := builtBinary(t, true)

	// A server that keeps its state on disk, so that it can be restarted like the clients.
	server := consultest.Server(t, "n1")
	var nodes []*simNode
	for i, name := range []string{"n1", "n2", "n3", "n4"} {
		agent := server
		if i > 0 {
			agent = consultest.Client(t, name, server)
		}
		nodes = append(nodes, &simNode{testNode: newTestNode(t, agent), name: name})
	}
	tl := timeline{failSince: map[string]time.Time{}, downSince: map[string]time.Time{}}
	for _, n := range nodes {
		n.agent.RegisterService("galera", []string{"rebootmgr", "min_passing=2"}, "passing")
		fail, hang := filepath.Join(n.dir, "fail"), filepath.Join(n.dir, "hang")
		n.task("pre", "10-drain", fmt.Sprintf("[ -e %s ] && { echo drain failed; exit 1; }; while [ -e %s ]; do sleep 0.05; done; true", fail, hang))
		n.task("post", "10-undrain", "true")
	}
	start := func(n *simNode) {
		n.daemon = n.startDaemonProc(bin, "--task-timeout", "2s", "--interval", "3s")
	}
	for _, n := range nodes {
		start(n)
	}
	for _, n := range nodes {
		n.put(n.keys().RebootRequired(n.name), "")
	}

	checkLock := func(when string) {
		t.Helper()
		rec := nodes[0].lockRecord()
		if len(rec.Holders) > 1 {
			t.Fatalf("%s: %d lock holders: %+v", when, len(rec.Holders), rec.Holders)
		}
	}
	// reboot handles a node whose reboot command ran: it checks the invariants at that moment,
	// takes the machine down, and brings it back with a new boot id.
	reboot := func(n *simNode) {
		t.Helper()
		now := time.Now()
		n.reboots++
		rec := n.lockRecord()
		if len(rec.Holders) != 1 || rec.Holders[0].Node != n.name || rec.Holders[0].Phase != lock.Rebooting {
			t.Fatalf("%s rebooted while the lock was %+v", n.name, rec.Holders)
		}
		if !tl.stopSince.IsZero() && now.Sub(tl.stopSince) > grace {
			t.Fatalf("%s rebooted %s after the stop flag was set", n.name, now.Sub(tl.stopSince))
		}
		surelyFailing := 0
		for _, o := range nodes {
			f, failing := tl.failSince[o.name]
			d, down := tl.downSince[o.name]
			if (failing && now.Sub(f) > grace) || (down && now.Sub(d) > grace) {
				surelyFailing++
				if o == n {
					t.Fatalf("%s rebooted with its own galera check failing since %s", n.name, f)
				}
			}
		}
		if len(nodes)-surelyFailing < 2 {
			t.Fatalf("%s rebooted with %d of %d galera instances failing (min_passing=2)", n.name, surelyFailing, len(nodes))
		}
		t.Logf("%s rebooted", n.name)
		// The machine goes down at once, its service with it.
		n.daemon.kill9()
		n.down = true
		tl.downSince[n.name] = time.Now()
		n.agent.SetService("galera", "critical")
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond) // the boot takes a while
		n.boot()
		n.down = false
		delete(tl.downSince, n.name)
		if !n.failing {
			n.agent.SetService("galera", "passing")
		}
		start(n)
	}
	// step handles what happened since the last step.
	step := func(when string) {
		t.Helper()
		for _, n := range nodes {
			if n.rebootCount() > n.reboots {
				reboot(n)
			}
		}
		checkLock(when)
	}

	faults := []struct {
		name string
		do   func(n *simNode)
	}{
		{"kill -9 the daemon", func(n *simNode) { n.daemon.kill9(); start(n) }},
		{"kill -9 and restart the Consul agent (n1's is the server)", func(n *simNode) {
			n.agent.Kill()
			n.agent.Start()
			status := "passing"
			if n.failing {
				status = "critical"
			}
			n.agent.SetService("galera", status)
		}},
		{"flip the stop flag", func(n *simNode) {
			if tl.stopSince.IsZero() {
				n.put(n.keys().Stop(), "fault run")
				tl.stopSince = time.Now()
			} else {
				n.kv().Delete(n.keys().Stop(), nil)
				tl.stopSince = time.Time{}
			}
		}},
		{"flip the galera check", func(n *simNode) {
			n.failing = !n.failing
			if n.failing {
				tl.failSince[n.name] = time.Now()
				n.agent.SetService("galera", "critical")
			} else {
				delete(tl.failSince, n.name)
				n.agent.SetService("galera", "passing")
			}
		}},
		{"make the pre-boot task fail", func(n *simNode) { writeFile(t, filepath.Join(n.dir, "fail"), "") }},
		{"make the pre-boot task hang", func(n *simNode) { writeFile(t, filepath.Join(n.dir, "hang"), "") }},
	}
	for i := range *faultEvents {
		n := nodes[rng.IntN(len(nodes))]
		f := faults[rng.IntN(len(faults))]
		wait := time.Now().Add(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		for time.Now().Before(wait) {
			step("before fault " + fmt.Sprint(i))
			time.Sleep(10 * time.Millisecond)
		}
		if n.down {
			continue
		}
		t.Logf("fault %d: %s on %s", i, f.name, n.name)
		f.do(n)
		step("after fault " + fmt.Sprint(i))
	}

	// The faults stop; an operator clears what they left.
	t.Log("faults over: healing")
	nodes[0].kv().Delete(nodes[0].keys().Stop(), nil)
	tl.stopSince = time.Time{}
	for _, n := range nodes {
		os.Remove(filepath.Join(n.dir, "fail"))
		os.Remove(filepath.Join(n.dir, "hang"))
		if n.failing {
			n.failing = false
			delete(tl.failSince, n.name)
			n.agent.SetService("galera", "passing")
		}
		n.kv().Delete(n.keys().Disabled(n.name), nil)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		step("while healing")
		left := 0
		for _, n := range nodes {
			if n.get(n.keys().RebootRequired(n.name)) != nil {
				left++
			}
			// A daemon killed between recording the reboot and running the reboot command
			// reports that the node did not reboot and waits for an operator.
			if !n.down && n.daemon.log.count("waiting for an operator") > 0 && n.holder(n.name).Phase == lock.Rebooting && n.rebootCount() == n.reboots {
				t.Logf("operator: %s did not reboot, unlocking it", n.name)
				n.expect(n.run("unlock", n.name, "--force"), 0, "released")
				n.daemon.kill9()
				start(n)
			}
		}
		if left == 0 && nodes[0].get(nodes[0].keys().Lock()) == nil {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range nodes {
				fmt.Fprintf(&b, "%s: reboots %d, request %v, holder %+v\n", n.name, n.reboots, n.get(n.keys().RebootRequired(n.name)) != nil, n.holder(n.name))
			}
			t.Fatalf("the fleet did not finish after the faults stopped:\n%s", b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range nodes {
		if n.reboots != 1 {
			t.Errorf("%s rebooted %d times, want exactly once", n.name, n.reboots)
		}
	}
	// No key is lost or corrupted: whatever is left under the prefix reads cleanly.
	pairs, _, err := nodes[0].kv().List("service/rebootmgr/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if strings.HasSuffix(p.Key, "/lock") && !json.Valid(p.Value) {
			t.Errorf("corrupted lock record: %q", p.Value)
		}
		t.Logf("left: %s = %q", p.Key, p.Value)
	}
}
