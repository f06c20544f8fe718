package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/internal/release010"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestUpgradeStopped is docs/migration.md's upgrade with nothing moving, step by step, with real
// daemons: in a group of limit 2, n00 reboots, n01 prepares (a pre-boot task waits), n02 waits
// for a place. `rebootmgr stop`: n01's task ends and it halts, keeping its place; n00, back from
// its reboot, finishes it under the stop and gives its place back; n02 does not start. Status
// then shows no holder rebooting or finishing, and rebootmgr 0.1.0 reads every record in
// Consul. Every daemon is restarted (the upgrade), `rebootmgr resume`: n01 and n02 reboot, n00
// does not again.
func TestUpgradeStopped(t *testing.T) {
	nodes := cluster(t, []string{"", "", ""})
	n00, n01, n02 := nodes[0], nodes[1], nodes[2]
	n00.put(n00.keys().GroupLimit("default"), "2")
	gate := filepath.Join(t.TempDir(), "go")
	n01.task("pre", "10-wait", "while [ ! -e "+gate+" ]; do sleep 0.05; done")
	daemons := map[*testNode]*daemonRun{}
	for _, n := range nodes {
		daemons[n] = n.startDaemon()
	}
	n00.put(n00.keys().RebootRequired("n00"), "")
	fleettest.WaitSeen(t, daemons[n00].Log.Seen("msg=rebooting"), "n00's reboot")
	daemons[n00].stop() // the machine goes down
	n01.put(n01.keys().RebootRequired("n01"), "")
	waitLock(t, n00, "default", func(r lock.Record) bool { h, ok := r.Holder("n01"); return ok && h.Phase == lock.Preparing })
	n02.put(n02.keys().RebootRequired("n02"), "")
	fleettest.WaitSeen(t, daemons[n02].Log.Seen("reboot lock held by"), "n02 waiting for a place")

	// 1. rebootmgr stop.
	n00.expect(n00.run("stop", "--reason", "upgrade"), 0)
	fleettest.WaitSeen(t, daemons[n01].Log.Seen("halted: stop flag is set"), "n01 halted")
	// n00 comes back: it finishes its reboot under the stop.
	n00.boot()
	daemons[n00] = n00.startDaemon()
	fleettest.WaitSeen(t, daemons[n00].Log.Seen("reboot finished: lock released"), "n00 finishing under the stop")

	// 2. Wait until status shows no holder rebooting or finishing.
	st := status(t, n00)
	for _, h := range st.Holders {
		if h.Node != "n01" || h.Phase != lock.Preparing {
			t.Fatalf("status after the stop: holder %+v", h)
		}
	}
	if n01.rebootCount() != 0 || n02.rebootCount() != 0 || n00.rebootCount() != 1 {
		t.Fatalf("reboots while stopped: n00 %d, n01 %d, n02 %d", n00.rebootCount(), n01.rebootCount(), n02.rebootCount())
	}
	readsAsRelease010(t, n00)

	// 3. Upgrade every node: its daemon restarts.
	for _, n := range nodes {
		daemons[n].stop()
		daemons[n] = n.startDaemon()
	}
	writeFile(t, gate, "")

	// 4. rebootmgr resume.
	n00.expect(n00.run("resume"), 0)
	for _, n := range []*testNode{n01, n02} {
		fleettest.WaitSeen(t, daemons[n].Log.Seen("msg=rebooting"), n.agent.Node+"'s reboot after the resume")
	}
	if n00.rebootCount() != 1 {
		t.Fatalf("n00 rebooted %d times", n00.rebootCount())
	}
}

// readsAsRelease010 fails unless rebootmgr 0.1.0 reads every record under the prefix it reads
// (its status reads them all: the groups' locks, queues, histories and limits, the fleet's
// holders).
func readsAsRelease010(t *testing.T, n *testNode) {
	t.Helper()
	pairs, _, err := n.kv().List(n.keys().Prefix+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		rest := strings.TrimPrefix(p.Key, n.keys().Prefix+"/")
		parts := strings.Split(rest, "/")
		var err error
		switch {
		case rest == "lock" || len(parts) == 3 && parts[0] == "groups" && parts[2] == "lock":
			_, err = release010.Decode(p.Value)
		case len(parts) == 3 && parts[0] == "groups" && parts[2] == "queue":
			_, err = release010.DecodeQueue(p.Value)
		case len(parts) == 3 && parts[0] == "groups" && parts[2] == "history":
			_, err = release010.DecodeHistory(p.Value)
		case len(parts) == 3 && parts[0] == "groups" && parts[2] == "limit":
			_, err = release010.ParseLimit(string(p.Value))
		case rest == "holders":
			_, err = release010.DecodeFleet(p.Value)
		}
		if err != nil {
			t.Errorf("rebootmgr 0.1.0 cannot read %s: %v\n%s", p.Key, err, p.Value)
		}
	}
}
