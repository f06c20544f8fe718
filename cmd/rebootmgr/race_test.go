package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestNodesRaceForTheLock: three nodes, each with its own agent in one cluster, run at the
// same instant; exactly one may start its reboot, the others are told who holds the lock. The
// holder finishes after its "boot", and the next one goes. No two nodes are ever past the lock
// at once.
func TestNodesRaceForTheLock(t *testing.T) {
	server := consultest.Dev(t, "n1")
	nodes := []*testNode{newTestNode(t, server)}
	for _, name := range []string{"n2", "n3"} {
		nodes = append(nodes, newTestNode(t, consultest.Client(t, name, server)))
	}
	for _, n := range nodes {
		n.agent.RegisterService("gateway", []string{"rebootmgr", "min_passing=2"}, "passing")
	}
	for _, n := range nodes {
		n.put(n.keys().RebootRequired(n.agent.Node), "")
	}

	done := map[*testNode]bool{}
	for round := 0; len(done) < len(nodes); round++ {
		if round > len(nodes) {
			t.Fatalf("not every node rebooted after %d rounds: %d did", round, len(done))
		}
		results := runAll(nodes, "reboot", "--check-triggers")

		started := startedIn(nodes, results, done, lockHeld("reboot lock held by"))
		if len(started) != 1 {
			t.Fatalf("round %d: %d nodes started a reboot, want exactly 1", round, len(started))
		}
		rec := nodes[0].lockRecord()
		if len(rec.Holders) != 1 || rec.Holders[0].Node != started[0].agent.Node || rec.Holders[0].Phase != lock.Rebooting {
			t.Fatalf("round %d: lock record %+v", round, rec)
		}

		n := started[0]
		n.boot()
		n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
		done[n] = true
	}
	for _, n := range nodes {
		if got := n.rebootCount(); got != 1 {
			t.Fatalf("%s rebooted %d times", n.agent.Node, got)
		}
	}
}

// startedIn checks the results of a round of runAll: the nodes in done found nothing to do, the
// others started a reboot or were held back as waiting says; it returns those that started.
func startedIn(nodes []*testNode, results []result, done map[*testNode]bool, waiting func(*testNode, result)) []*testNode {
	var started []*testNode
	for i, n := range nodes {
		switch r := results[i]; {
		case done[n]:
			n.expect(r, 0, "no reboot required")
		case r.code == 0:
			n.expect(r, 0, "reboot started")
			started = append(started, n)
		default:
			waiting(n, r)
		}
	}
	return started
}

// lockHeld is a node told the lock is held, mentioning held, or told that nodes before it in
// the group's queue go first.
func lockHeld(held string) func(*testNode, result) {
	return func(n *testNode, r result) {
		if r.code == exitLockHeld && strings.Contains(r.stderr, "asked first and go first") {
			// A place was free, but a node before it in the group's queue took it.
			return
		}
		n.expect(r, exitLockHeld, held)
	}
}

// runAll runs the same command on every node at the same instant and returns the results in
// the nodes' order.
func runAll(nodes []*testNode, command string, args ...string) []result {
	results := make([]result, len(nodes))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = n.runWith(context.Background(), nil, &fleettest.Log{}, command, args...)
		}()
	}
	close(start)
	wg.Wait()
	return results
}
