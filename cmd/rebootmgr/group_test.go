package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestGroupLimitRace: ten nodes of group compute with limit 3, all run at the same instant, round
// after round: never more than three are past the lock, and every node reboots once.
func TestGroupLimitRace(t *testing.T) {
	server := consultest.Dev(t, "c00", "-node-meta", "rebootmgr-group:compute")
	nodes := []*testNode{newTestNode(t, server)}
	for i := 1; i < 10; i++ {
		nodes = append(nodes, newTestNode(t, consultest.Client(t, fmt.Sprintf("c%02d", i), server, "-node-meta", "rebootmgr-group:compute")))
	}
	nodes[0].expect(nodes[0].run("limit", "compute", "3"), 0, "3 at a time")
	for _, n := range nodes {
		n.put(n.keys().RebootRequired(n.agent.Node), "")
	}
	done := map[*testNode]bool{}
	for round := 0; len(done) < len(nodes); round++ {
		if round > 4 {
			t.Fatalf("not every node rebooted after %d rounds", round)
		}
		results := runAll(nodes, "reboot", "--check-triggers")
		started := startedIn(nodes, results, done, lockHeld("limit 3"))
		want := min(3, len(nodes)-len(done))
		if len(started) != want {
			t.Fatalf("round %d: %d nodes started a reboot, want %d", round, len(started), want)
		}
		pair := nodes[0].get(nodes[0].keys().GroupLock("compute"))
		rec, err := lock.Decode(pair.Value)
		if err != nil || len(rec.Holders) != want {
			t.Fatalf("round %d: lock record %s (%v)", round, pair.Value, err)
		}
		if nodes[0].get(nodes[0].keys().Lock()) != nil {
			t.Fatal("group compute used the default group's lock")
		}
		for _, n := range started {
			n.boot()
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
			done[n] = true
		}
	}
}

// TestGroupStop: a group's stop flag halts that group only, and its daemon at once.
func TestGroupStop(t *testing.T) {
	n := dev(t)
	// Group compute exists: it has a limit.
	n.put(n.keys().GroupLimit("compute"), "1")
	n.expect(n.run("stop", "--group", "compute", "--reason", "nova upgrade"), 0, "stopped")
	n.expect(n.run("reboot", "--group", "compute"), exitStopped, "group compute", "nova upgrade")
	n.expect(n.run("status"), 0, "STOPPED", "nova upgrade")
	n.expect(n.run("resume", "--group", "compute"), 0, "resumed")

	n.task("pre", "10-drain", "echo draining; sleep 1000")
	d := n.startDaemon("--group", "compute")
	n.put(n.keys().RebootRequired("n1"), "")
	fleettest.WaitSeen(t, d.Log.Seen("draining"), "the task running")
	n.expect(n.run("stop", "--group", "other", "--force"), 0)
	n.expect(n.run("stop", "--group", "compute"), 0)
	fleettest.WaitSeen(t, d.Log.Seen("halted"), "the halt")
	if h, _ := lockAt(t, n, "compute").Holder("n1"); h.Phase != lock.Preparing {
		t.Fatalf("lock of group compute after the halt: %+v", lockAt(t, n, "compute"))
	}
	if n.rebootCount() != 0 {
		t.Fatal("rebooted")
	}
}

func TestLimitCommand(t *testing.T) {
	n := dev(t)
	n.expect(n.run("limit", "default"), 0, "group default: 1 at a time")
	n.expect(n.run("limit", "compute", "0"), exitUsage, "at least 1")
	n.expect(n.run("limit", "bad/name", "2"), exitUsage, "group name")
	// The new forms, and what is refused of them, writing nothing.
	for _, bad := range [][]string{{"0%"}, {"101%"}, {"Auto"}, {"2", "--per-zone", "-1"}, {"3 per-zone=1"}} {
		n.expect(n.run("limit", append([]string{"compute"}, bad...)...), exitUsage)
	}
	if n.get(n.keys().GroupLimit("compute")) != nil {
		t.Fatal("a refused limit was written")
	}
	n.expect(n.run("limit", "compute", "--per-zone", "1"), exitUsage, "--per-zone goes with a limit")
	n.expect(n.run("limit", "compute", "10%", "--per-zone", "2"), exitError, "no group compute", "--force")
	n.expect(n.run("limit", "compute", "10%", "--per-zone", "2", "--force"), 0, "10% of", "at most 2 per zone")
	if p := n.get(n.keys().GroupLimit("compute")); p == nil || string(p.Value) != "10% per-zone=2" {
		t.Fatalf("limit key: %v", p)
	}
	n.expect(n.run("limit", "compute", "auto"), 0, "auto (as many as the quorum rules allow)")
	// --remove gives the group the default back, and takes nothing else.
	for _, bad := range [][]string{{"--remove", "3"}, {"--remove", "--per-zone", "2"}, {"--remove", "--force"}} {
		n.expect(n.run("limit", append([]string{"compute"}, bad...)...), exitUsage, "--remove takes only the GROUP")
	}
	n.expect(n.run("limit", "compute", "--remove"), 0, "group compute: 1 at a time (the default; removed", `"auto"`)
	if n.get(n.keys().GroupLimit("compute")) != nil {
		t.Fatal("the removed limit is still there")
	}
	n.expect(n.run("limit", "compute"), 0, "group compute: 1 at a time")
	n.expect(n.run("limit", "default", "--remove"), 0, "group default had no limit set: 1 at a time")
	// Its limit was all that knew group compute.
	n.expect(n.run("limit", "compute", "--remove"), exitError, "no group compute", "nothing removed")
	n.put(n.keys().GroupLimit("default"), "many")
	n.expect(n.run("reboot"), exitError, "limit", "many")
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
		t.Fatal("rebooted with an unreadable limit")
	}
}

func lockAt(t *testing.T, n *testNode, group string) lock.Record {
	t.Helper()
	return stored(t, n, n.keys().GroupLock(group), lock.Decode)
}

// TestDeadlinePassed: a holder past its deadline stops its group with a reason naming it, and
// keeps the lock; nothing releases it by itself. The run that stops the group ends at the stop
// gate, as check says it would, asked to reboot or not.
func TestDeadlinePassed(t *testing.T) {
	n := dev(t)
	putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Rebooting, Since: time.Now().Add(-time.Hour), Deadline: time.Now().Add(-time.Minute)})
	n.expect(n.run("reboot", "--check-triggers"), exitStopped, "n7 did not finish")
	stop := n.get(n.keys().GroupStop("default"))
	if stop == nil || !strings.Contains(string(stop.Value), "n7 did not finish its reboot") {
		t.Fatalf("group not stopped for the overdue holder: %v", stop)
	}
	n.expect(n.run("reboot"), exitStopped, "n7 did not finish")
	if h := n.holder("n7"); h.Phase != lock.Rebooting {
		t.Fatalf("the overdue holder's lock changed: %+v", n.lockRecord())
	}
	// The first reason stays; later runs do not rewrite it.
	if again := n.get(n.keys().GroupStop("default")); string(again.Value) != string(stop.Value) {
		t.Fatalf("stop reason rewritten: %s", again.Value)
	}
}

// TestDaemonWakesAtTheDeadline: an idle daemon looks again when a holder's deadline passes,
// though nothing in Consul changes then.
func TestDaemonWakesAtTheDeadline(t *testing.T) {
	n := dev(t)
	putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Finishing, Since: time.Now(), Deadline: time.Now().Add(500 * time.Millisecond)})
	d := n.startDaemon()
	fleettest.WaitSeen(t, d.Log.Seen("sources=[deadline]"), "an evaluation at the deadline")
	fleettest.WaitSeen(t, d.Log.Seen("reboot deadline passed"), "the deadline noticed")
	fleettest.WaitSeen(t, d.Log.Seen("sources=[stop-key]"), "the daemon seeing the stop flag it set")
	if n.get(n.keys().GroupStop("default")) == nil {
		t.Fatal("group not stopped")
	}
}

// TestWaitingDaemonWakesAtTheDeadline: a daemon waiting for its turn hears nothing of the lock
// but its turn, and a holder's new deadline is told to it as one: it looks again when the
// deadline passes.
func TestWaitingDaemonWakesAtTheDeadline(t *testing.T) {
	n := dev(t)
	n.put(n.keys().RebootRequired("n1"), "")
	putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Preparing, Since: time.Now()})
	d := n.startDaemon()
	fleettest.WaitSeen(t, d.Log.Seen("waiting: "), "the daemon waiting for the lock")
	fleettest.WaitSeen(t, d.Log.Seen("holding its watches of the lock"), "the daemon holding its watches of the lock")
	if q := queueOf(t, n); len(q.Entries) != 1 {
		t.Fatalf("n1 not in the queue: %+v", q)
	}
	commitHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Rebooting, Since: time.Now(), Deadline: time.Now().Add(time.Second)})
	fleettest.WaitSeen(t, d.Log.Seen("sources=[look]"), "the daemon told of the new deadline")
	fleettest.WaitSeen(t, d.Log.Seen("looking at the lock alone"), "a look at the lock alone")
	fleettest.WaitSeen(t, d.Log.Seen("sources=[deadline]"), "an evaluation at the deadline")
	fleettest.WaitSeen(t, d.Log.Seen("reboot deadline passed"), "the deadline noticed")
	fleettest.WaitSeen(t, d.Log.Seen("sources=[stop-key]"), "the daemon seeing the stop flag it set")
	if n.get(n.keys().GroupStop("default")) == nil || n.rebootCount() != 0 {
		t.Fatal("group not stopped, or the node rebooted")
	}
}

// commitHolder changes h's entry in the default group's lock as a daemon would: with
// check-and-set, telling the nodes of the queue what they must hear.
func commitHolder(t testing.TB, n *testNode, h lock.Holder) {
	t.Helper()
	changeLock(t, n, func(v place.View) (place.Change, error) {
		rec, err := v.Lock.Update(h)
		return place.Change{Lock: rec}, err
	})
}

// releaseHolder gives node's place in the default group's lock back as its daemon would.
func releaseHolder(t testing.TB, n *testNode, node string) {
	t.Helper()
	changeLock(t, n, func(v place.View) (place.Change, error) {
		return place.ReleaseIn(v, node, time.Now()), nil
	})
}

func changeLock(t testing.TB, n *testNode, change func(place.View) (place.Change, error)) {
	t.Helper()
	s := &store.Consul{Client: n.agent.Client, Keys: n.keys()}
	if _, _, err := place.ChangeLock(context.Background(), s, slog.New(slog.DiscardHandler), change); err != nil {
		t.Fatal(err)
	}
}

func putHolder(t *testing.T, n *testNode, h lock.Holder) {
	t.Helper()
	rec, err := lock.Record{Version: lock.Version}.Acquire(h, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := rec.Encode()
	n.put(n.keys().Lock(), string(data))
}

// TestRebootWindow: outside its windows, or on a blackout date, a node does not start and does
// not take the lock; the post-boot part is never held back.
func TestRebootWindow(t *testing.T) {
	now := time.Now().UTC()
	today := now.Format(time.DateOnly)
	always := "daily 00:00-24:00 UTC"
	// A window on another day of the week only.
	other := time.Weekday((int(now.Weekday()) + 3) % 7).String()[:3] + " 00:00-24:00 UTC"
	holidays := filepath.Join(t.TempDir(), "holidays")
	writeFile(t, holidays, "# test: today and tomorrow, in case the run crosses midnight\n"+today+"\n"+now.AddDate(0, 0, 1).Format(time.DateOnly)+"\n")

	n := dev(t)
	n.expect(n.run("reboot", "--reboot-window", other), exitWindow, "outside the reboot window", "next opens")
	n.expect(n.run("reboot", "--reboot-window", always, "--blackout", "@"+holidays), exitWindow, "outside the reboot window")
	n.expect(n.run("reboot", "--reboot-window", "Mon 2:00-03:00"), exitUsage, "HH:MM")
	n.expect(n.run("reboot", "--window-spread", "1h"), exitUsage, "needs a --reboot-window")
	n.expect(n.run("reboot", "--reboot-window", "Mon 02:00-03:00", "--window-spread", "2h"), exitUsage, "not shorter")
	if n.get(n.keys().Lock()) != nil || n.rebootCount() != 0 {
		t.Fatal("a node outside its window took the lock or rebooted")
	}
	n.expect(n.run("reboot", "--reboot-window", other, "--reboot-window", always), 0, "reboot started")
	n.boot()
	n.expect(n.run("reboot", "--reboot-window", other), 0, "reboot finished")
}

// TestHistory: every reboot, and every failed one, is recorded with who asked for it.
func TestHistory(t *testing.T) {
	n := dev(t)
	n.expect(n.runWith(t.Context(), map[string]string{"SUDO_USER": "alice"}, &fleettest.Log{}, "trigger", "--reason", "kernel 6.1"), 0)
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
	n.boot()
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
	n.task("pre", "10-drain", "echo 3 VMs left; exit 1")
	n.expect(n.run("reboot"), exitTaskFailed)

	r := n.run("history", "--json")
	n.expect(r, 0)
	var entries []history.Entry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("history --json: %v\n%s", err, r.stdout)
	}
	if len(entries) != 2 || entries[0].Outcome != history.Finished || entries[1].Outcome != history.TaskFailed {
		t.Fatalf("history: %+v", entries)
	}
	if !strings.Contains(entries[0].TriggeredBy, "kernel 6.1") || !strings.Contains(entries[0].TriggeredBy, "by alice") {
		t.Fatalf("history does not say who asked: %q", entries[0].TriggeredBy)
	}
	if !strings.Contains(entries[1].Detail, "3 VMs left") {
		t.Fatalf("history does not say why it failed: %q", entries[1].Detail)
	}
	n.expect(n.run("history", "n1"), 0, "finished", "task failed")
}

// TestBreaker: after two failed reboots within the period the group stops itself.
func TestBreaker(t *testing.T) {
	n := dev(t)
	n.task("pre", "10-drain", "echo drain failed; exit 1")
	n.expect(n.run("reboot", "--breaker", "2/1h"), exitTaskFailed)
	if n.get(n.keys().GroupStop("default")) != nil {
		t.Fatal("the breaker tripped after one failure")
	}
	n.expect(n.run("enable"), 0)
	n.expect(n.run("reboot", "--breaker", "2/1h"), exitTaskFailed)
	stop := n.get(n.keys().GroupStop("default"))
	if stop == nil || !strings.Contains(string(stop.Value), "circuit breaker: 2 failed reboots") {
		t.Fatalf("the breaker did not stop the group: %v", stop)
	}
	n.expect(n.run("enable"), 0)
	n.expect(n.run("reboot"), exitStopped, "circuit breaker")
	n.expect(n.run("reboot", "--breaker", "2/soon"), exitUsage, "breaker")
}

// TestCooldown: the next reboot in a group waits until the cooldown since the last one passed.
func TestCooldown(t *testing.T) {
	n := dev(t)
	n.expect(n.run("reboot", "--cooldown", "1h"), 0, "reboot started")
	n.boot()
	n.expect(n.run("reboot", "--cooldown", "1h"), 0, "reboot finished")
	n.expect(n.run("reboot", "--cooldown", "1h"), exitWindow, "cooldown", "the next may start at")
	if n.get(n.keys().Lock()) != nil || n.rebootCount() != 1 {
		t.Fatal("a node in the cooldown took the lock or rebooted")
	}
	n.expect(n.run("reboot"), 0, "reboot started")
}

// TestStayGreen: a check that fails while the node waits for it to stay green stops the run
// before the lock; one that stays green lets it go.
func TestStayGreen(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() { done <- n.runWith(t.Context(), nil, log, "reboot", "--stay-green", "1h") }()
	fleettest.WaitSeen(t, log.Seen("must stay green"), "the wait for green")
	if n.get(n.keys().Lock()) != nil {
		t.Fatal("the lock was taken before the checks stayed green")
	}
	n.agent.SetService("galera", "critical")
	n.expect(<-done, exitUnhealthy, "while staying green", "galera")
	if n.get(n.keys().Lock()) != nil || n.rebootCount() != 0 {
		t.Fatal("rebooted or took the lock")
	}

	n.agent.SetService("galera", "passing")
	n.expect(n.run("reboot", "--stay-green", "300ms"), 0, "reboot started")
}

// TestStopIsTheFleetsOnANodeOfAGroup: on a node whose configuration names its group
// (REBOOTMGR_GROUP, in the file every command reads, or the environment), rebootmgr stop still
// stops the fleet and resume resumes it: the group to stop is the one the command line names.
func TestStopIsTheFleetsOnANodeOfAGroup(t *testing.T) {
	n := dev(t)
	n.put(n.keys().GroupLimit("compute"), "1")
	file := filepath.Join(n.dir, "rebootmgr.default")
	writeFile(t, file, "REBOOTMGR_GROUP=compute\n")
	for _, environ := range []map[string]string{{"REBOOTMGR_CONFIG": file}, {"REBOOTMGR_GROUP": "compute"}} {
		run := func(args ...string) result {
			return n.runWith(t.Context(), environ, &fleettest.Log{}, args[0], args[1:]...)
		}
		n.expect(run("stop", "--reason", "galera upgrade"), 0, "stopped", "("+n.keys().Stop()+")")
		if n.get(n.keys().Stop()) == nil || n.get(n.keys().GroupStop("compute")) != nil {
			t.Fatalf("rebootmgr stop with %v did not stop the fleet:\n%s", environ, n.agent.KVState())
		}
		n.expect(run("stop", "--group", "compute"), 0, "("+n.keys().GroupStop("compute")+")")
		n.expect(run("resume"), 0, "resumed")
		if n.get(n.keys().Stop()) != nil || n.get(n.keys().GroupStop("compute")) == nil {
			t.Fatalf("rebootmgr resume with %v did not resume the fleet alone:\n%s", environ, n.agent.KVState())
		}
		n.expect(run("resume", "--group", "compute"), 0, "resumed")
		// The node's own commands still take its group from there.
		n.expect(run("check"), 0, "group compute")
	}
}
