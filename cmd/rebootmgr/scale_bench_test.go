package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// handOffCost is what one fleet size cost Consul, per daemon, from the metering proxies.
type handOffCost struct {
	nodes int
	// idle is the whole fleet's use while idle for window; startup one daemon's start-up.
	idle, startup spent
	window        time.Duration
	// total is the roll's time; fleet the whole fleet's use per hand-off.
	total time.Duration
	fleet spent
	// waiting is one daemon's use per hand-off while it waited for its place (asked to reboot,
	// holding none), done while it was idle again after its own reboot, own its whole reboot
	// (from its place taken to its release: its pre-boot part, its start after the boot, its
	// post-boot part).
	waiting, done, own   spent
	waitPairs, donePairs int
}

// per divides a use by n.
func per(u spent, n int) spent {
	if n == 0 {
		return spent{}
	}
	return spent{u.requests / int64(n), u.sent / int64(n), u.received / int64(n)}
}

// perF is u/n as floats: requests and bytes.
func perF(u spent, n int) (float64, float64) {
	if n == 0 {
		return 0, 0
	}
	return float64(u.requests) / float64(n), float64(u.bytes()) / float64(n)
}

// BenchmarkHandOffScale: what a roll and an idle fleet cost Consul as a group grows. For each
// size in REBOOTMGR_BENCH_SIZES (default 10,30), that many nodes in group compute (limit 1,
// one service nova-compute max_failing=1 on every node, whose check's output never changes:
// the harness's agents send an output's change to the servers at once, where Consul's default
// is every 5 minutes; internal/fleettest: each node its own agent and its daemon a process
// talking to it through a metering proxy) first idle for
// REBOOTMGR_BENCH_IDLE (default 1m; the daemons' blocking queries return after Consul's 10
// minutes at the most, so 11m gives the steady rate), then are all asked to reboot at once
// and roll, REBOOTMGR_BENCH_REBOOT (default 1s) down each. It prints, per size, the requests
// and bytes (both ways on the wire, headers included) per idle daemon per minute, per
// hand-off for the whole fleet, per hand-off for one daemon waiting for its place and one
// idle again after its reboot, and per reboot for the rebooting node; then a projection to
// 1,000 and 10,000 nodes:
//
//	go test -run '^$' -bench HandOffScale -benchtime 1x -timeout 60m ./cmd/rebootmgr
func BenchmarkHandOffScale(b *testing.B) {
	var sizes []int
	for _, f := range strings.Split(envString("REBOOTMGR_BENCH_SIZES", "10,30"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			b.Fatalf("REBOOTMGR_BENCH_SIZES: %q is not a size of at least 2", f)
		}
		sizes = append(sizes, n)
	}
	rebootTime := envDuration(b, "REBOOTMGR_BENCH_REBOOT", time.Second)
	window := envDuration(b, "REBOOTMGR_BENCH_IDLE", time.Minute)
	bin := fleettest.Build(b, false)
	var costs []handOffCost
	for _, size := range sizes {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			for range b.N {
				c := measureHandOffs(b, bin, size, rebootTime, window)
				costs = append(costs, c)
				fmt.Print(costHeader(rebootTime) + c.row())
			}
			b.ReportMetric(0, "ns/op")
		})
	}
	if len(costs) == 0 {
		return
	}
	fmt.Print(costHeader(rebootTime))
	for _, c := range costs {
		fmt.Print(c.row())
	}
	projectHandOffs(costs, window)
}

func costHeader(rebootTime time.Duration) string {
	return fmt.Sprintf("\n| nodes in the group | idle daemon per minute | start-up per daemon | roll (%s reboots) | per hand-off, whole fleet | per hand-off, all waiting daemons | per hand-off, one waiting daemon | per hand-off, one daemon done | per reboot, the rebooting daemon |\n|---|---|---|---|---|---|---|---|---|\n", rebootTime)
}

func (c handOffCost) row() string {
	ir, ib := perF(c.idle, c.nodes)
	ir, ib = ir/c.window.Minutes(), ib/c.window.Minutes()
	wr, wb := perF(c.waiting, c.waitPairs)
	dr, db := perF(c.done, c.donePairs)
	or, ob := perF(c.own, c.nodes)
	fr, fb := perF(c.fleet, 1)
	ar, ab := perF(c.waiting, c.nodes)
	return fmt.Sprintf("| %d | %.2f req, %s | %d req, %s | %s | %.0f req, %s | %.0f req, %s | %.1f req, %s | %.1f req, %s | %.0f req, %s |\n",
		c.nodes, ir, kb(ib), c.startup.requests, kb(float64(c.startup.bytes())), c.total.Round(100*time.Millisecond),
		fr, kb(fb), ar, kb(ab), wr, kb(wb), dr, kb(db), or, kb(ob))
}

// measureHandOffs measures one fleet of size nodes.
func measureHandOffs(b *testing.B, bin string, size int, rebootTime, window time.Duration) handOffCost {
	specs := make([]fleettest.Spec, size)
	for i := range specs {
		specs[i] = fleettest.Spec{Name: fmt.Sprintf("cmp%03d", i+1), Role: fleettest.Compute, Group: fleettest.Compute,
			Services: []fleettest.Service{{Name: "nova-compute", Tags: []string{"rebootmgr", "max_failing=1"}}}}
	}
	setUp := time.Now()
	fleet := fleettest.New(b, specs, fleettest.Options{Binary: bin, DaemonArgs: []string{"--settle", "0s"}})
	r := &fleetRoll{b: b, fleet: fleet, reboot: rebootTime}
	meters := make([]*meter, size)
	index := map[string]int{}
	for i, n := range fleet.Nodes {
		addr, m := meteredProxy(b, n.Agent.HTTPAddr)
		r.addrs, meters[i] = append(r.addrs, addr), m
		index[n.Name] = i
	}
	read := func() []spent {
		out := make([]spent, size)
		for i, m := range meters {
			out[i] = m.read()
		}
		return out
	}
	sum := func(from, to []spent) (s spent) {
		for i := range from {
			s = s.plus(to[i].minus(from[i]))
		}
		return s
	}
	r.startAll()
	for _, n := range fleet.Nodes {
		fleettest.WaitSeen(b, n.Daemon.Log.Seen(`msg="idle: no reboot required"`), n.Name+"'s first evaluation")
	}
	c := handOffCost{nodes: size, window: window}
	// Start-up: every daemon's requests until now, with a few seconds for the last writes of
	// the members of its service.
	time.Sleep(5 * time.Second)
	started := read()
	c.startup = per(sum(make([]spent, size), started), size)
	b.Logf("%d agents and daemons up in %s", size, time.Since(setUp).Round(time.Second))
	time.Sleep(window)
	c.idle = sum(started, read())

	caps := rollCaps(b, specs, map[string]lock.Limit{fleettest.Compute: lock.One})
	m := watchRoll(b, fleet, caps)
	var mu sync.Mutex
	taken, released := make([]spent, size), make([]spent, size)
	waitedFor, doneFor := make([]int, size), make([]int, size)
	releases := 0
	m.onTaken = func(node string) {
		mu.Lock()
		defer mu.Unlock()
		i := index[node]
		taken[i] = meters[i].read()
		waitedFor[i] = releases
	}
	m.onReleased = func(node string) {
		mu.Lock()
		defer mu.Unlock()
		i := index[node]
		released[i] = meters[i].read()
		releases++
		doneFor[i] = -releases
	}
	before := read()
	c.total = r.roll(m)
	after := read()
	m.stop()
	m.check()
	for i := range size {
		doneFor[i] += releases
		c.waiting = c.waiting.plus(taken[i].minus(before[i]))
		c.own = c.own.plus(released[i].minus(taken[i]))
		c.done = c.done.plus(after[i].minus(released[i]))
		c.waitPairs += waitedFor[i]
		c.donePairs += doneFor[i]
	}
	c.fleet = per(sum(before, after), size)
	return c
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// kb says a number of bytes in kB (1000 bytes) or MB.
func kb(bytes float64) string {
	switch {
	case bytes >= 1e6:
		return fmt.Sprintf("%.1f MB", bytes/1e6)
	case bytes >= 1e4:
		return fmt.Sprintf("%.0f kB", bytes/1e3)
	}
	return fmt.Sprintf("%.1f kB", bytes/1e3)
}

// linear is y = a + b*n.
type linear struct{ a, b float64 }

// fit is y through the first and last of the measured sizes when it grew by more than a tenth
// between them, else the constant y of the largest size (one that does not grow, or falls, is
// not projected to grow).
func fit(costs []handOffCost, y func(handOffCost) float64) linear {
	first, last := costs[0], costs[len(costs)-1]
	if first.nodes == last.nodes || y(last) <= 1.1*y(first) {
		return linear{a: y(last)}
	}
	slope := (y(last) - y(first)) / float64(last.nodes-first.nodes)
	return linear{a: y(first) - slope*float64(first.nodes), b: slope}
}

func (l linear) at(n int) float64 { return l.a + l.b*float64(n) }

// Assumptions of the projection: a group of N nodes rolling with projPlaces places at once,
// each held projHold (a real reboot and its tasks), so a hand-off every projHold/projPlaces.
const (
	projPlaces = 5
	projHold   = 5 * time.Minute
)

// projectHandOffs projects the measured costs to fleets of 1,000 and 10,000 nodes in one group.
// Over a whole roll of N nodes there are N hand-offs, so what all waiting daemons spend over
// the roll, per hand-off, is what one waiting daemon spends over its whole wait (its join, the
// watches it holds returning once, the times it is told to look); likewise for the daemons
// done.
func projectHandOffs(costs []handOffCost, window time.Duration) {
	waitReq := fit(costs, func(c handOffCost) float64 { r, _ := perF(c.waiting, c.nodes); return r })
	waitBytes := fit(costs, func(c handOffCost) float64 { _, by := perF(c.waiting, c.nodes); return by })
	doneReq := fit(costs, func(c handOffCost) float64 { r, _ := perF(c.done, c.nodes); return r })
	doneBytes := fit(costs, func(c handOffCost) float64 { _, by := perF(c.done, c.nodes); return by })
	ownReq := fit(costs, func(c handOffCost) float64 { r, _ := perF(c.own, c.nodes); return r })
	ownBytes := fit(costs, func(c handOffCost) float64 { _, by := perF(c.own, c.nodes); return by })
	idleReq := fit(costs, func(c handOffCost) float64 { r, _ := perF(c.idle, c.nodes); return r / c.window.Minutes() })
	idleBytes := fit(costs, func(c handOffCost) float64 { _, by := perF(c.idle, c.nodes); return by / c.window.Minutes() })
	fmt.Printf("\nfitted in N (the group's nodes) through the sizes measured, per hand-off: all waiting daemons %.1f%+.3f*N requests, %s%+.0f*N bytes; all daemons done %.1f%+.3f*N requests, %s%+.0f*N bytes; the rebooting daemon %.0f%+.2f*N requests; an idle daemon per minute %.2f%+.4f*N requests (idle window %s)\n",
		waitReq.a, waitReq.b, kb(waitBytes.a), waitBytes.b, doneReq.a, doneReq.b, kb(doneBytes.a), doneBytes.b, ownReq.a, ownReq.b, idleReq.a, idleReq.b, window)
	handOffs := float64(projPlaces) / projHold.Seconds() // per second
	fmt.Printf("\n| one group of N, %d places, %s per reboot (a hand-off every %s) | requests per hand-off | Consul requests/s | bytes/s |\n|---|---|---|---|\n",
		projPlaces, projHold, projHold/projPlaces)
	for _, n := range []int{1000, 10000} {
		req := ownReq.at(n) + waitReq.at(n) + doneReq.at(n)
		bytes := ownBytes.at(n) + waitBytes.at(n) + doneBytes.at(n)
		fmt.Printf("| %d, rolling | %.0f | %.1f | %s/s |\n", n, req, req*handOffs, kb(bytes*handOffs))
		fmt.Printf("| %d, idle | - | %.1f | %s/s |\n", n, float64(n)*idleReq.at(n)/60, kb(float64(n)*idleBytes.at(n)/60))
	}
}
