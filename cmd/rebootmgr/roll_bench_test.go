package main

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/store"
)

// BenchmarkRoll rolls a fleet of REBOOTMGR_BENCH_NODES (default 30) nodes (internal/fleettest:
// each with its own agent, and its daemon as its own process) through one reboot each; a reboot
// takes REBOOTMGR_BENCH_REBOOT (default 1s) of simulated down time, with a trivial task in each
// phase and no settle. It reports the total roll time against the ideal (the sum of the reboots)
// and the overhead per hand-off, with events and, as the baseline timer-based tools give, with
// events off and a REBOOTMGR_BENCH_INTERVAL (default 5s) tick, extrapolated to 30s and 5m
// ticks; and per daemon while the fleet rolled: its Consul requests (each talks to its agent
// through a counting proxy), CPU seconds and peak memory. It prints Markdown tables:
//
//	go test -run '^$' -bench Roll -benchtime 1x -timeout 30m ./cmd/rebootmgr
func BenchmarkRoll(b *testing.B) {
	nodesN := envInt(b, "REBOOTMGR_BENCH_NODES", 30)
	rebootTime := envDuration(b, "REBOOTMGR_BENCH_REBOOT", time.Second)
	interval := envDuration(b, "REBOOTMGR_BENCH_INTERVAL", 5*time.Second)

	specs := make([]fleettest.Spec, nodesN)
	for i := range specs {
		specs[i] = fleettest.Spec{Name: fmt.Sprintf("node-%02d", i), Group: store.DefaultGroup}
	}
	fleet := fleettest.New(b, specs, fleettest.Options{Binary: fleettest.Build(b, false), DaemonArgs: []string{"--settle", "0s"}})
	nodes := fleet.Nodes
	ideal := time.Duration(nodesN) * rebootTime
	// Every daemon talks to its agent through a proxy that counts its requests.
	proxies := make([]string, len(nodes))
	counts := make([]*atomic.Int64, len(nodes))
	for i, n := range nodes {
		proxies[i], counts[i] = countingProxy(b, n.Agent.HTTPAddr)
	}
	requests := func() (sum int64) {
		for _, c := range counts {
			sum += c.Load()
		}
		return sum
	}
	type rolled struct {
		total    time.Duration
		requests int64
		cpu      float64 // CPU seconds of every daemon process
		peakMB   float64 // the largest peak memory of one daemon process
	}
	// roll rolls the fleet once with the daemons' extra flags.
	roll := func(extra ...string) rolled {
		var r rolled
		start := func(i int) {
			nodes[i].Start(append([]string{"--consul-addr", proxies[i]}, extra...)...)
		}
		// stop takes a daemon's numbers and kills it, as the reboot or the end of the roll does.
		stop := func(i int) {
			pid := nodes[i].Daemon.Pid()
			r.cpu += cpuSeconds(b, pid)
			r.peakMB = max(r.peakMB, peakMB(b, pid))
			nodes[i].Daemon.Kill9()
		}
		for i := range nodes {
			start(i)
		}
		// Reboots counted so far, read before any node is asked to reboot.
		done := make([]int, len(nodes))
		for i, n := range nodes {
			done[i] = n.RebootCount()
		}
		began, before := time.Now(), requests()
		for _, n := range nodes {
			n.Request()
		}
		progress := time.Now()
		for finished := 0; finished < len(nodes); {
			if time.Since(progress) > time.Minute {
				rec := nodes[0].Lock()
				for _, n := range nodes {
					if _, ok := rec.Holder(n.Name); ok {
						b.Logf("daemon log of %s:\n%s", n.Name, n.Daemon.Log)
					}
				}
				b.Fatalf("no reboot for a minute after %d of %d; lock %+v", finished, len(nodes), rec.Holders)
			}
			for i, n := range nodes {
				if n.RebootCount() == done[i] {
					continue
				}
				progress = time.Now()
				done[i] = n.RebootCount()
				stop(i)
				time.Sleep(rebootTime) // the machine is down
				n.Boot()
				start(i)
				finished++
			}
			time.Sleep(5 * time.Millisecond)
		}
		// The last node finishes its post-boot part.
		for len(nodes[0].Lock().Holders) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		r.total, r.requests = time.Since(began), requests()-before
		for i := range nodes {
			stop(i)
		}
		return r
	}
	for range b.N {
		events := roll()
		polling := roll("--watch=false", "--interval", interval.String())
		perEvent := (events.total - ideal) / time.Duration(nodesN)
		perPoll := (polling.total - ideal) / time.Duration(nodesN)
		scale := func(to time.Duration) time.Duration {
			return time.Duration(float64(perPoll) * float64(to) / float64(interval))
		}
		perMinute := func(r rolled) float64 { return float64(r.requests) / float64(nodesN) / r.total.Minutes() }
		b.ReportMetric(events.total.Seconds(), "events-total-s")
		b.ReportMetric(float64(perEvent.Milliseconds()), "events-overhead-ms/handoff")
		b.ReportMetric(float64(perPoll.Milliseconds()), "polling-overhead-ms/handoff")
		b.ReportMetric(perMinute(events), "events-requests/daemon/min")
		b.ReportMetric(events.cpu/float64(nodesN), "events-cpu-s/daemon")
		fmt.Printf("\n| %d nodes, %s reboot each | total | ideal | overhead per hand-off |\n|---|---|---|---|\n", nodesN, rebootTime)
		fmt.Printf("| events | %s | %s | %s |\n", events.total.Round(time.Millisecond), ideal, perEvent.Round(time.Millisecond))
		fmt.Printf("| tick %s, events off (measured) | %s | %s | %s |\n", interval, polling.total.Round(time.Millisecond), ideal, perPoll.Round(time.Millisecond))
		for _, to := range []time.Duration{30 * time.Second, 5 * time.Minute} {
			fmt.Printf("| tick %s, events off (extrapolated) | %s | %s | %s |\n", to, (ideal + scale(to)*time.Duration(nodesN)).Round(time.Second), ideal, scale(to).Round(time.Second))
		}
		fmt.Printf("\nwaiting per hand-off with events vs. a 5m tick: %.0fx less\n", float64(scale(5*time.Minute))/float64(max(perEvent, time.Millisecond)))
		fmt.Printf("\n| per daemon while rolling | Consul requests | per minute | CPU seconds | peak memory |\n|---|---|---|---|---|\n")
		for _, m := range []struct {
			name string
			r    rolled
		}{{"events", events}, {"tick " + interval.String() + ", events off", polling}} {
			fmt.Printf("| %s | %.0f | %.1f | %.3f | %.1f MB |\n", m.name, float64(m.r.requests)/float64(nodesN), perMinute(m.r), m.r.cpu/float64(nodesN), m.r.peakMB)
		}
	}
}

// peakMB is the most memory a process has held (VmHWM).
func peakMB(b *testing.B, pid int) float64 {
	b.Helper()
	return procStatusMB(b, pid, "VmHWM:")
}

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return d
	}
	return def
}
