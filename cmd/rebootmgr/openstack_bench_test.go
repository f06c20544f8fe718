package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// openStackShape is an OpenStack fleet whose every node is asked to reboot at once:
// gateways (gateway min_passing=2: one at a time of two, its own instance counted as passing),
// controllers (controller, galera, zookeeper, rabbitmq min_passing=3, cassandra max_failing=0:
// one at a time of three), computes in group compute (nova-compute max_failing=4: five at a
// time), quobyte on every node (max_failing=4: five in flight across the whole fleet) and dkms
// (local_only). Gateways and controllers are in group default; both groups have the limit
// auto, so the rules alone decide.
func openStackShape(gateways, controllers, computes int) []fleettest.Spec {
	dkms := fleettest.Service{Name: "dkms", Tags: []string{"rebootmgr", "local_only"}}
	quobyte := fleettest.Service{Name: "quobyte", Tags: []string{"rebootmgr", "ignore_maintenance", "max_failing=4"}}
	var specs []fleettest.Spec
	for i := 1; i <= gateways; i++ {
		specs = append(specs, fleettest.Spec{Name: fmt.Sprintf("gw%d", i), Role: fleettest.Gateway, Group: store.DefaultGroup, Services: []fleettest.Service{
			{Name: "gateway", Tags: []string{"rebootmgr", "min_passing=2"}}, quobyte, dkms,
		}})
	}
	for i := 1; i <= controllers; i++ {
		specs = append(specs, fleettest.Spec{Name: fmt.Sprintf("ctl%d", i), Role: fleettest.Controller, Group: store.DefaultGroup, Services: []fleettest.Service{
			{Name: "controller", Tags: []string{"rebootmgr", "min_passing=3"}},
			{Name: "galera", Tags: []string{"rebootmgr", "min_passing=3"}},
			{Name: "zookeeper", Tags: []string{"rebootmgr", "min_passing=3"}},
			{Name: "cassandra", Tags: []string{"rebootmgr", "max_failing=0"}},
			{Name: "rabbitmq", Tags: []string{"rebootmgr", "min_passing=3"}},
			quobyte, dkms,
		}})
	}
	for i := 1; i <= computes; i++ {
		specs = append(specs, fleettest.Spec{Name: fmt.Sprintf("cmp%02d", i), Role: fleettest.Compute, Group: fleettest.Compute, Compute: true, Services: []fleettest.Service{
			{Name: "nova-compute", Tags: []string{"rebootmgr", "max_failing=4"}}, quobyte, dkms,
		}})
	}
	return specs
}

// BenchmarkOpenStackRoll: how close a roll comes to the bound its rules allow. An OpenStack
// fleet (openStackShape: REBOOTMGR_BENCH_GATEWAYS, _CONTROLLERS, _COMPUTES, default 2, 3 and
// 24; each node with its own agent and its daemon as a process, internal/fleettest) is asked
// to reboot all at once; each reboot is REBOOTMGR_BENCH_REBOOT (default 2s) down, a trivial
// task in each phase, no settle; the services stay passing (a reboot in flight counts as
// failing by the lock alone). It prints the bound and how it came to it, the roll's time
// against it, how long each node held its place beyond its reboot, and how full the binding
// rule kept its places. A monitor holds every state of the fleet's record of holders against
// every rule, and fails the benchmark if one was ever broken. REBOOTMGR_BENCH_LOGS=DIR keeps
// every daemon's log of the roll in DIR, one file a node:
//
//	go test -run '^$' -bench OpenStackRoll -benchtime 1x -timeout 30m ./cmd/rebootmgr
func BenchmarkOpenStackRoll(b *testing.B) {
	specs := openStackShape(envInt(b, "REBOOTMGR_BENCH_GATEWAYS", 2), envInt(b, "REBOOTMGR_BENCH_CONTROLLERS", 3), envInt(b, "REBOOTMGR_BENCH_COMPUTES", 24))
	rebootTime := envDuration(b, "REBOOTMGR_BENCH_REBOOT", 2*time.Second)
	limits := map[string]lock.Limit{store.DefaultGroup: {Auto: true}, fleettest.Compute: {Auto: true}}

	setUp := time.Now()
	fleet := fleettest.New(b, specs, fleettest.Options{Binary: fleettest.Build(b, false), DaemonArgs: []string{"--settle", "0s"}})
	keys := store.Keys{Prefix: store.DefaultPrefix}
	for g, l := range limits {
		if _, err := fleet.Nodes[0].KV().Put(&api.KVPair{Key: keys.GroupLimit(g), Value: []byte(l.String())}, nil); err != nil {
			b.Fatal(err)
		}
	}
	caps := rollCaps(b, specs, limits)
	rounds, how := rollBound(specs, caps)
	bound := time.Duration(rounds) * rebootTime
	r := &fleetRoll{b: b, fleet: fleet, reboot: rebootTime}
	for _, n := range fleet.Nodes {
		addr, _ := meteredProxy(b, n.Agent.HTTPAddr)
		r.addrs = append(r.addrs, addr)
	}
	r.startAll()
	b.Logf("%d agents and daemons up in %s", len(specs), time.Since(setUp).Round(time.Second))
	for range b.N {
		m := watchRoll(b, fleet, caps)
		total := r.roll(m)
		m.stop()
		m.check()

		// How long each node held its place beyond its reboot: its pre-boot part, the move to
		// rebooting, the daemon's start after the boot, the post-boot part and the release.
		var over []time.Duration
		var heldSum time.Duration
		for _, h := range m.held {
			d := h.till.Sub(h.from)
			heldSum += d
			over = append(over, d-rebootTime)
		}
		slices.Sort(over)
		mean := heldSum / time.Duration(len(m.held))
		binding := caps[0]
		for _, c := range caps {
			if c.rounds() > binding.rounds() || (c.rounds() == binding.rounds() && c.cap > binding.cap) {
				binding = c
			}
		}
		// How full the binding rule kept its places: the time its nodes held places over what
		// its places offered during the roll.
		var bindingHeld time.Duration
		for _, h := range m.held {
			if binding.nodes[h.node] {
				bindingHeld += h.till.Sub(h.from)
			}
		}
		use := float64(bindingHeld) / (float64(binding.cap) * float64(total))
		ratio := float64(total) / float64(bound)

		fmt.Printf("\nOpenStack roll: %d nodes (%d gateways, %d controllers, %d computes), every one asked at once, %s reboot each\n",
			len(specs), count(specs, fleettest.Gateway), count(specs, fleettest.Controller), count(specs, fleettest.Compute), rebootTime)
		fmt.Printf("lower bound from the rules (every reboot %s, nothing else taking time):\n%s", rebootTime, how)
		fmt.Printf("\n| %d nodes, %s reboot | total | bound (%d x %s) | total / bound | place held per reboot (mean) | beyond the reboot p50 / p90 / max | places of the binding rule in use |\n|---|---|---|---|---|---|---|\n",
			len(specs), rebootTime, rounds, rebootTime)
		fmt.Printf("| events | %s | %s | %.2f | %s | %s / %s / %s | %.0f%% |\n",
			total.Round(time.Millisecond), bound, ratio, mean.Round(time.Millisecond),
			pct(over, 0.5), pct(over, 0.9), over[len(over)-1].Round(time.Millisecond), 100*use)
		fmt.Printf("binding rule: %s\n", binding.what)
		fmt.Printf("\nbound with each place held as long as it was (mean %s): %d x %s = %s; total / that = %.2f\n",
			mean.Round(time.Millisecond), rounds, mean.Round(time.Millisecond), (time.Duration(rounds) * mean).Round(time.Millisecond), float64(total)/float64(time.Duration(rounds)*mean))
		var most []string
		for _, c := range caps {
			most = append(most, fmt.Sprintf("%s: %d of %d", c.what, m.most[c.what], c.cap))
		}
		fmt.Printf("most in flight at once, of the most allowed: %s; the whole fleet: %d\n", strings.Join(most, "; "), m.mostAll)
		fmt.Printf("the machine's CPU during the roll: %.1f of %d cores busy on average (the fleet's %d agents and daemons, and whatever else ran)\n", r.busy, runtime.NumCPU(), len(specs))
		fmt.Printf("order the places were taken: %s\n", strings.Join(m.order, " "))
		fmt.Printf("monitor: %d states of the fleet's record of holders seen, %d times states were missed between two reads (their union judged); no rule broken\n", m.versions, m.missed)
		b.ReportMetric(total.Seconds(), "total-s")
		b.ReportMetric(bound.Seconds(), "bound-s")
		b.ReportMetric(ratio, "total/bound")
		b.ReportMetric(0, "ns/op")
	}
}

// count is how many specs have role.
func count(specs []fleettest.Spec, role string) int {
	n := 0
	for _, s := range specs {
		if s.Role == role {
			n++
		}
	}
	return n
}

// pct is the p-th quantile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p)].Round(time.Millisecond)
}
