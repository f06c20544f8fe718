package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

var (
	faultSeed   = flag.Int64("fault-seed", -1, "seed of TestFleetFaults (-1: the fixed seeds 1 and 2, as CI runs; 0: one from the clock; the seed is printed)")
	faultEvents = flag.Int("fault-events", 20, "faults TestFleetFaults injects per seed (raise it for a longer run)")
)

// grace is how long before a reboot a gate must have been false for the reboot to count as a
// violation: a script check sees a fault at its next run (every second here), and the pipeline
// checks every gate right before it reboots, so a change in the last moments before is a race
// no tool can win.
const grace = 3 * time.Second

// timeline is when the stop flag, each node's services and each node's machine changed.
type timeline struct {
	stopSince time.Time                       // zero: not set
	failSince map[string]map[string]time.Time // node, service
	downSince map[string]time.Time
}

func (tl *timeline) surelyFailing(node, service string, now time.Time) bool {
	if f, ok := tl.failSince[node][service]; ok && now.Sub(f) > grace {
		return true
	}
	d, ok := tl.downSince[node]
	return ok && now.Sub(d) > grace
}

// TestFleetFaults rolls a small OpenStack fleet (two gateways, three controllers, two computes in
// their own group; the services and rules of the examples, as script checks) and, while it
// rolls, kills daemons, restarts agents (the server too), flips the stop flag, fails and heals
// services, makes tasks fail or hang and VMs refuse to migrate. After every step: no group's
// lock has more holders than its limit (1). At every reboot: the lock holds only that node,
// the stop flag was not set, every rule of every service of the node held, and a compute had
// no VM left. Once the faults stop, every node reboots exactly once and finishes. Reproduce a
// run with -fault-seed.
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

// simNode is a node of the fault run and what the run did to it.
type simNode struct {
	*fleettest.Node
	down    bool
	failing map[string]bool
	reboots int
}

func faultRun(t *testing.T, seed uint64) {
	t.Logf("seed %d (go test ./cmd/rebootmgr -run TestFleetFaults -fault-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	bin := fleettest.Build(t, true)
	fleet := fleettest.New(t, fleettest.OpenStack(2, 3, 2), fleettest.Options{
		Binary:     bin,
		DaemonArgs: []string{"--task-timeout", "2s", "--interval", "3s"},
	})
	var nodes []*simNode
	for _, n := range fleet.Nodes {
		nodes = append(nodes, &simNode{Node: n, failing: map[string]bool{}})
	}
	tl := timeline{failSince: map[string]map[string]time.Time{}, downSince: map[string]time.Time{}}
	for _, n := range nodes {
		tl.failSince[n.Name] = map[string]time.Time{}
		n.Start()
	}
	for _, n := range nodes {
		n.Request()
	}
	first := nodes[0]

	checkLocks := func(when string) {
		t.Helper()
		for group, members := range fleet.Groups() {
			if rec := members[0].Lock(); len(rec.Holders) > 1 {
				t.Fatalf("%s: group %s has %d lock holders: %+v", when, group, len(rec.Holders), rec.Holders)
			}
		}
	}
	// checkRules checks, at n's reboot, every rule of every service n runs against what the run
	// did to the fleet.
	checkRules := func(n *simNode, now time.Time) {
		t.Helper()
		for _, svc := range n.Services {
			rules, err := health.ParseRules(svc.Tags)
			if err != nil {
				t.Fatal(err)
			}
			if tl.surelyFailing(n.Name, svc.Name, now) {
				t.Fatalf("%s rebooted with its own %s failing", n.Name, svc.Name)
			}
			if rules.LocalOnly {
				continue
			}
			members := fleet.Running(svc.Name)
			failing := 0
			for _, m := range members {
				if tl.surelyFailing(m.Name, svc.Name, now) {
					failing++
				}
			}
			passing := len(members) - failing
			switch {
			case rules.MinPassing >= 0 && passing < rules.MinPassing:
				t.Fatalf("%s rebooted with %s passing on %d of %d (min_passing=%d)", n.Name, svc.Name, passing, len(members), rules.MinPassing)
			case rules.MaxFailing >= 0 && failing > rules.MaxFailing:
				t.Fatalf("%s rebooted with %s failing on %d of %d (max_failing=%d)", n.Name, svc.Name, failing, len(members), rules.MaxFailing)
			case !rules.Quorum() && failing > 0:
				t.Fatalf("%s rebooted with %s failing on %d of %d (all must pass)", n.Name, svc.Name, failing, len(members))
			}
		}
	}
	// reboot handles a node whose reboot command ran: it checks the invariants at that moment,
	// takes the machine down, and brings it back with a new boot id.
	reboot := func(n *simNode) {
		t.Helper()
		now := time.Now()
		n.reboots++
		rec := n.Lock()
		if len(rec.Holders) != 1 || rec.Holders[0].Node != n.Name || rec.Holders[0].Phase != lock.Rebooting {
			t.Fatalf("%s rebooted while the lock of group %s was %+v", n.Name, n.Group, rec.Holders)
		}
		if !tl.stopSince.IsZero() && now.Sub(tl.stopSince) > grace {
			t.Fatalf("%s rebooted %s after the stop flag was set", n.Name, now.Sub(tl.stopSince))
		}
		checkRules(n, now)
		if n.Compute && n.VMs() != 0 {
			t.Fatalf("compute %s rebooted with %d VMs running", n.Name, n.VMs())
		}
		t.Logf("%s rebooted", n.Name)
		// The machine goes down at once, its services with it.
		n.Daemon.Kill9()
		n.down = true
		tl.downSince[n.Name] = time.Now()
		n.SetDown(true)
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond) // the boot takes a while
		n.Boot()
		n.down = false
		delete(tl.downSince, n.Name)
		n.Start()
	}
	// step handles what happened since the last step.
	step := func(when string) {
		t.Helper()
		for _, n := range nodes {
			if n.RebootCount() > n.reboots {
				reboot(n)
			}
		}
		checkLocks(when)
	}

	faults := []struct {
		name string
		do   func(n *simNode)
	}{
		{"kill -9 the daemon", func(n *simNode) { n.Daemon.Kill9(); n.Start() }},
		{"kill -9 and restart the Consul agent (" + first.Name + "'s is the server)", func(n *simNode) {
			n.Agent.Kill()
			n.Agent.Start()
		}},
		{"flip the stop flag", func(n *simNode) {
			if tl.stopSince.IsZero() {
				if _, err := n.KV().Put(&api.KVPair{Key: n.Keys().Stop(), Value: []byte("fault run")}, nil); err != nil {
					t.Fatal(err)
				}
				tl.stopSince = time.Now()
			} else {
				if _, err := n.KV().Delete(n.Keys().Stop(), nil); err != nil {
					t.Fatal(err)
				}
				tl.stopSince = time.Time{}
			}
		}},
		{"flip a service", func(n *simNode) {
			svc := n.Services[rng.IntN(len(n.Services))].Name
			n.failing[svc] = !n.failing[svc]
			if n.failing[svc] {
				tl.failSince[n.Name][svc] = time.Now()
			} else {
				delete(tl.failSince[n.Name], svc)
			}
			t.Logf("  %s failing: %v", svc, n.failing[svc])
			n.SetFailing(svc, n.failing[svc])
		}},
		{"make the pre-boot task fail", func(n *simNode) { n.SetTaskFails(true) }},
		{"make the pre-boot task hang", func(n *simNode) { n.SetTaskHangs(true) }},
		{"make the VMs stuck", func(n *simNode) { n.SetVMsStuck(true) }},
	}
	for i := range *faultEvents {
		n := nodes[rng.IntN(len(nodes))]
		f := faults[rng.IntN(len(faults))]
		for f.name == "make the VMs stuck" && !n.Compute {
			n = nodes[rng.IntN(len(nodes))]
		}
		wait := time.Now().Add(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		for time.Now().Before(wait) {
			step("before fault " + fmt.Sprint(i))
			time.Sleep(10 * time.Millisecond)
		}
		if n.down {
			continue
		}
		t.Logf("fault %d: %s on %s", i, f.name, n.Name)
		f.do(n)
		step("after fault " + fmt.Sprint(i))
	}

	// The faults stop; an operator clears what they left.
	t.Log("faults over: healing")
	if _, err := first.KV().Delete(first.Keys().Stop(), nil); err != nil {
		t.Fatal(err)
	}
	tl.stopSince = time.Time{}
	for _, n := range nodes {
		n.SetTaskFails(false)
		n.SetTaskHangs(false)
		n.SetVMsStuck(false)
		for svc, failing := range n.failing {
			if failing {
				n.SetFailing(svc, false)
				delete(tl.failSince[n.Name], svc)
			}
		}
		n.failing = map[string]bool{}
		if _, err := n.KV().Delete(n.Keys().Disabled(n.Name), nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(4 * time.Minute)
	for {
		step("while healing")
		left := 0
		locked := false
		for _, n := range nodes {
			if n.Requested() {
				left++
			}
			if len(n.Lock().Holders) > 0 {
				locked = true
			}
			// A daemon killed between recording the reboot and running the reboot command
			// reports that the node did not reboot and waits for an operator.
			if !n.down && n.Daemon.Log.Count("waiting for an operator") > 0 && n.RebootCount() == n.reboots {
				if h, ok := n.Lock().Holder(n.Name); ok && h.Phase == lock.Rebooting {
					t.Logf("operator: %s did not reboot, unlocking it", n.Name)
					out, err := exec.Command(bin, append([]string{"unlock", n.Name, "--force"}, n.ConsulArgs()...)...).CombinedOutput()
					if err != nil || !strings.Contains(string(out), "released") {
						t.Fatalf("unlock %s: %v: %s", n.Name, err, out)
					}
					n.Daemon.Kill9()
					n.Start()
				}
			}
		}
		if left == 0 && !locked {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range nodes {
				h, _ := n.Lock().Holder(n.Name)
				fmt.Fprintf(&b, "%s: reboots %d, request %v, holder %+v\n", n.Name, n.reboots, n.Requested(), h)
			}
			t.Fatalf("the fleet did not finish after the faults stopped:\n%s", b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range nodes {
		if n.reboots != 1 {
			t.Errorf("%s rebooted %d times, want exactly once", n.Name, n.reboots)
		}
		if n.Compute && n.VMs() != fleettest.VMsPerCompute {
			t.Errorf("compute %s has %d VMs after its post-boot tasks, want %d", n.Name, n.VMs(), fleettest.VMsPerCompute)
		}
	}
	// No key is lost or corrupted: whatever is left under the prefix reads cleanly.
	pairs, _, err := first.KV().List("service/rebootmgr/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if (strings.HasSuffix(p.Key, "/lock") || strings.HasSuffix(p.Key, "/history")) && !json.Valid(p.Value) {
			t.Errorf("corrupted %s: %q", p.Key, p.Value)
		}
		t.Logf("left: %s = %.120q", p.Key, p.Value)
	}
}
