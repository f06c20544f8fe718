package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// BenchmarkRoll rolls a fleet of REBOOTMGR_BENCH_NODES (default 30) nodes, each with its own
// agent and daemon, through one reboot each; a reboot takes REBOOTMGR_BENCH_REBOOT (default
// 1s) of simulated down time, with no tasks and no settle. It reports the total roll time
// against the ideal (the sum of the reboots) and the overhead per hand-off, with events and,
// as the baseline timer-based tools give, with events off and a REBOOTMGR_BENCH_INTERVAL
// (default 5s) tick, extrapolated to 30s and 5m ticks. It prints a Markdown table:
//
//	go test -run '^$' -bench Roll -benchtime 1x -timeout 30m ./cmd/rebootmgr
func BenchmarkRoll(b *testing.B) {
	nodesN := envInt(b, "REBOOTMGR_BENCH_NODES", 30)
	rebootTime := envDuration(b, "REBOOTMGR_BENCH_REBOOT", time.Second)
	interval := envDuration(b, "REBOOTMGR_BENCH_INTERVAL", 5*time.Second)

	server := consultest.Dev(b, "node-00")
	nodes := []*testNode{newTestNode(b, server)}
	for i := 1; i < nodesN; i++ {
		nodes = append(nodes, newTestNode(b, consultest.Client(b, fmt.Sprintf("node-%02d", i), server)))
	}
	ideal := time.Duration(nodesN) * rebootTime
	roll := func(extra ...string) time.Duration {
		daemons := make([]*daemonRun, len(nodes))
		for i, n := range nodes {
			daemons[i] = n.startDaemon(extra...)
		}
		// Reboots counted so far, read before any node is asked to reboot.
		done := make([]int, len(nodes))
		for i, n := range nodes {
			done[i] = n.rebootCount()
		}
		start := time.Now()
		for _, n := range nodes {
			n.put(n.keys().RebootRequired(n.agent.Node), "")
		}
		progress := time.Now()
		for finished := 0; finished < len(nodes); {
			if time.Since(progress) > time.Minute {
				rec := nodes[0].lockRecord()
				for i, n := range nodes {
					if _, ok := rec.Holder(n.agent.Node); ok {
						b.Logf("daemon log of %s:\n%s", n.agent.Node, daemons[i].Log)
					}
				}
				b.Fatalf("no reboot for a minute after %d of %d; lock %+v", finished, len(nodes), rec.Holders)
			}
			for i, n := range nodes {
				if n.rebootCount() == done[i] {
					continue
				}
				progress = time.Now()
				done[i] = n.rebootCount()
				daemons[i].stop()
				time.Sleep(rebootTime) // the machine is down
				n.boot()
				daemons[i] = n.startDaemon(extra...)
				finished++
			}
			time.Sleep(5 * time.Millisecond)
		}
		// The last node finishes its post-boot part.
		for nodes[0].get(nodes[0].keys().Lock()) != nil {
			time.Sleep(5 * time.Millisecond)
		}
		total := time.Since(start)
		for _, d := range daemons {
			d.stop()
		}
		return total
	}
	for range b.N {
		events := roll()
		polling := roll("--watch=false", "--interval", interval.String())
		perEvent := (events - ideal) / time.Duration(nodesN)
		perPoll := (polling - ideal) / time.Duration(nodesN)
		scale := func(to time.Duration) time.Duration {
			return time.Duration(float64(perPoll) * float64(to) / float64(interval))
		}
		b.ReportMetric(events.Seconds(), "events-total-s")
		b.ReportMetric(float64(perEvent.Milliseconds()), "events-overhead-ms/handoff")
		b.ReportMetric(float64(perPoll.Milliseconds()), "polling-overhead-ms/handoff")
		fmt.Printf("\n| %d nodes, %s reboot each | total | ideal | overhead per hand-off |\n|---|---|---|---|\n", nodesN, rebootTime)
		fmt.Printf("| events | %s | %s | %s |\n", events.Round(time.Millisecond), ideal, perEvent.Round(time.Millisecond))
		fmt.Printf("| tick %s, events off (measured) | %s | %s | %s |\n", interval, polling.Round(time.Millisecond), ideal, perPoll.Round(time.Millisecond))
		for _, to := range []time.Duration{30 * time.Second, 5 * time.Minute} {
			fmt.Printf("| tick %s, events off (extrapolated) | %s | %s | %s |\n", to, (ideal + scale(to)*time.Duration(nodesN)).Round(time.Second), ideal, scale(to).Round(time.Second))
		}
		fmt.Printf("\nwaiting per hand-off with events vs. a 5m tick: %.0fx less\n", float64(scale(5*time.Minute))/float64(max(perEvent, time.Millisecond)))
	}
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
