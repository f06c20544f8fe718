package main

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestQueueOrder: nodes that find the lock full join the group's queue in the order they asked;
// once a place opens, it goes to the first of them although all race for it, the next place to
// the second; and a node blocked by its own health holds up nobody behind it.
func TestQueueOrder(t *testing.T) {
	nodes := cluster(t, []string{"", "", "", ""})
	first := nodes[0]
	putHolder(t, first, lock.Holder{Node: "x9", Phase: lock.Preparing, Since: time.Now()})
	order := []*testNode{nodes[3], nodes[1], nodes[2]}
	for _, n := range order {
		n.put(n.keys().RebootRequired(n.agent.Node), "")
		n.expect(n.run("reboot", "--check-triggers"), exitLockHeld, "x9")
	}
	q := queueOf(t, first)
	if len(q.Entries) != 3 || q.Entries[0].Node != "n03" || q.Entries[1].Node != "n01" || q.Entries[2].Node != "n02" {
		t.Fatalf("queue: %+v", q)
	}
	if row := statusOf(t, first, "n01"); row.Queue == nil || row.Queue.Place != 2 || row.Queue.Ahead != 1 {
		t.Fatalf("status of n01, second in the queue: %+v", row.Queue)
	}
	first.expect(first.run("unlock", "x9"), 0, "released")

	done := map[*testNode]bool{}
	round := func(want *testNode) {
		t.Helper()
		results := runAll(order, "reboot", "--check-triggers")
		started := startedIn(order, results, done, func(n *testNode, r result) {
			if r.code != exitLockHeld && r.code != exitUnhealthy {
				t.Fatalf("%s: %s", n.agent.Node, r)
			}
		})
		if len(started) != 1 || started[0] != want {
			t.Fatalf("started %v, want %s alone", names(started), want.agent.Node)
		}
		want.boot()
		want.expect(want.run("reboot", "--check-triggers"), 0, "reboot finished")
		done[want] = true
	}
	round(nodes[3])
	// n01, next, is held by its own health: n02 goes in its stead.
	nodes[1].agent.RegisterService("dkms", []string{"rebootmgr", "local_only"}, "critical")
	nodes[1].expect(nodes[1].run("reboot", "--check-triggers"), exitUnhealthy, "dkms") // its run marks it blocked
	round(nodes[2])
	if q := queueOf(t, first); len(q.Entries) != 1 || q.Entries[0].Node != "n01" || q.Entries[0].Blocked != "health" {
		t.Fatalf("queue with n01 held by its health: %+v", q)
	}
	nodes[1].agent.SetService("dkms", "passing")
	round(nodes[1])
	if q := queueOf(t, first); len(q.Entries) != 0 {
		t.Fatalf("queue after every node rebooted: %+v", q)
	}
}

// queueOf is the default group's queue as read: its record, then its asks.
func queueOf(t *testing.T, n *testNode) lock.Queue {
	t.Helper()
	return groupQueue(t, n, "default")
}

// groupQueue is group's queue as read: its record, then its asks.
func groupQueue(t testing.TB, n *testNode, group string) lock.Queue {
	t.Helper()
	pairs, _, err := n.kv().List(n.keys().GroupPrefix(group), nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := n.keys().DecodeGroupQueue(group, n.get(n.keys().GroupQueue(group)), pairs)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func names(nodes []*testNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.agent.Node)
	}
	return out
}

// TestHandOffWakesTheFront: daemons waiting in the queue hold their watches of the lock; a
// place given back wakes the first of the queue and the next (should the first let its turn
// pass), by their turn keys, and the first's deadline, once it reboots, the next two of the
// queue (to look again when it passes); nobody else: the others hear the lock change once,
// from the watches they held, and do not evaluate.
func TestHandOffWakesTheFront(t *testing.T) {
	nodes := cluster(t, []string{"", "", "", "", ""})
	first := nodes[0]
	putHolder(t, first, lock.Holder{Node: "x9", Phase: lock.Preparing, Since: time.Now()})
	var daemons []*daemonRun
	for _, n := range nodes {
		d := n.startDaemon()
		n.put(n.keys().RebootRequired(n.agent.Node), "")
		fleettest.WaitSeen(t, d.Log.Seen("holding its watches of the lock"), n.agent.Node+" waiting for its turn")
		daemons = append(daemons, d)
	}
	q := queueOf(t, first)
	if len(q.Entries) != len(nodes) {
		t.Fatalf("queue: %+v", q)
	}
	head, next := q.Entries[0].Node, q.Entries[1].Node
	byName := map[string]int{}
	for i, n := range nodes {
		byName[n.agent.Node] = i
	}
	before := make([]int, len(nodes))
	for i, d := range daemons {
		before[i] = d.Log.Count("sources=[")
	}
	releaseHolder(t, first, "x9")
	fleettest.WaitSeen(t, daemons[byName[head]].Log.Seen(`msg="reboot lock taken"`), head+", first in the queue, taking the place")
	// The next is told of the place, and then (the first's deadline set) to look: it may hear
	// the two as one.
	select {
	case <-daemons[byName[next]].Log.Seen("sources=[turn]"):
	case <-daemons[byName[next]].Log.Seen("sources=[look]"):
	case <-time.After(20 * time.Second):
		t.Fatalf("never saw %s, next, woken", next)
	}
	for _, e := range q.Entries[3:] {
		i := byName[e.Node]
		fleettest.WaitSeen(t, daemons[i].Log.Seen("only the locks or health changed: not evaluating"), e.Node+" hearing the change from its held watches")
		if got := daemons[i].Log.Count("sources=["); got != before[i] {
			t.Fatalf("%s, behind the front, evaluated %d times at the hand-off", e.Node, got-before[i])
		}
		if first.get(first.keys().GroupTurn("default", e.Node)) != nil {
			t.Fatalf("%s, behind the front, was woken", e.Node)
		}
	}
	if holders := first.lockRecord().Holders; len(holders) != 1 || holders[0].Node != head {
		t.Fatalf("holders after the hand-off: %+v", holders)
	}
}

// TestCooldownKeepsTheQueue: with a cooldown between the group's reboots, the places go in the
// order the nodes asked; the first of the queue waits out the cooldown keeping its turn, and the
// nodes behind the front are not woken by the hand-offs (the cooldown is the group's wait, not a
// gate of each node: they wait for their turn, in the queue).
func TestCooldownKeepsTheQueue(t *testing.T) {
	nodes := cluster(t, []string{"", "", "", "", ""})
	first := nodes[0]
	putHolder(t, first, lock.Holder{Node: "x9", Phase: lock.Preparing, Since: time.Now()})
	cooldown := []string{"--cooldown", "4s"}
	daemons := make([]*daemonRun, len(nodes))
	// They ask in an order that is not their names'.
	order := []int{3, 1, 4, 0, 2}
	for _, i := range order {
		n := nodes[i]
		daemons[i] = n.startDaemon(cooldown...)
		n.put(n.keys().RebootRequired(n.agent.Node), "")
		fleettest.WaitSeen(t, daemons[i].Log.Seen("holding its watches of the lock"), n.agent.Node+" waiting for its turn")
	}
	releaseHolder(t, first, "x9")
	finished := map[int]bool{}
	for round, want := range order {
		i := waitAnyReboot(t, nodes, finished)
		if i != want {
			t.Fatalf("round %d: %s rebooted, want %s (the order asked: %v)", round, nodes[i].agent.Node, nodes[want].agent.Node, order)
		}
		// Nodes two or more places behind hear nothing of the hand-off.
		behind := map[int]int{}
		for _, j := range order[round+1:][min(2, len(order)-round-1):] {
			behind[j] = daemons[j].Log.Count("sources=[")
		}
		daemons[i].stop()
		nodes[i].boot()
		daemons[i] = nodes[i].startDaemon(cooldown...)
		fleettest.WaitSeen(t, daemons[i].Log.Seen("idle: reboot finished"), "the post-boot part of "+nodes[i].agent.Node)
		finished[i] = true
		if round+1 < len(order) {
			next := order[round+1]
			fleettest.WaitSeen(t, daemons[next].Log.Seen(`msg="reboot lock taken"`), nodes[next].agent.Node+" taking its place after the cooldown")
		}
		for j, before := range behind {
			if got := daemons[j].Log.Count("sources=["); got != before {
				t.Fatalf("round %d: %s, behind the front, evaluated %d times at the hand-off", round, nodes[j].agent.Node, got-before)
			}
		}
	}
}

// TestDeadNodesAtTheFront: the first nodes of the queue have no daemon (killed, their machines
// off), so the place that opens for them goes unanswered: the daemon that gave it back passes
// over them once they had their time to answer, and the first node whose daemon runs takes the
// place well within a turn, however many dead nodes are before it (not at the next tick).
func TestDeadNodesAtTheFront(t *testing.T) {
	nodes := cluster(t, []string{"", "", "", "", ""})
	first, live := nodes[0], nodes[4]
	dr := first.startDaemon()
	first.put(first.keys().RebootRequired(first.agent.Node), "")
	i := waitAnyReboot(t, nodes, map[int]bool{})
	if i != 0 {
		t.Fatalf("%s rebooted, want %s", nodes[i].agent.Node, first.agent.Node)
	}
	// Three nodes asked, their daemons gone since; the live one asked after them.
	q := lock.Queue{Version: lock.Version}
	for _, n := range nodes[1:4] {
		q = q.Join(n.agent.Node, time.Now().Add(-time.Hour))
	}
	data, _ := q.Encode()
	first.put(first.keys().GroupQueue("default"), string(data))
	d := live.startDaemon()
	live.put(live.keys().RebootRequired(live.agent.Node), "")
	fleettest.WaitSeen(t, d.Log.Seen("holding its watches of the lock"), live.agent.Node+" waiting for its turn")

	dr.stop()
	first.boot()
	dr = first.startDaemon()
	fleettest.WaitSeen(t, dr.Log.Seen("idle: reboot finished"), "the post-boot part of "+first.agent.Node)
	released := time.Now()
	select {
	case <-d.Log.Seen(`msg="reboot lock taken"`):
	case <-time.After(lock.QueueGrace):
		t.Fatalf("%s, behind three dead nodes, did not take the place within a turn (%s)", live.agent.Node, lock.QueueGrace)
	}
	t.Logf("the place went past three dead nodes in %s", time.Since(released).Round(time.Millisecond))
	if got := queueOf(t, first); len(got.Entries) != 3 || got.Entries[0].Blocked != lock.MissedTurn {
		t.Fatalf("queue once passed over: %+v", got.Entries)
	}
}

// TestRaisedLimitKeepsTheOrder: nodes have waited in the queue for longer than a turn when an
// operator raises the limit: the new place is the first's (its turn begins as the limit is
// raised), the last looking first finds it so, and none is marked as having missed its turn.
func TestRaisedLimitKeepsTheOrder(t *testing.T) {
	nodes := cluster(t, []string{"", "", "", "", ""})
	first := nodes[0]
	putHolder(t, first, lock.Holder{Node: "x9", Phase: lock.Preparing, Since: time.Now()})
	order := []*testNode{nodes[4], nodes[2], nodes[3], nodes[1]}
	for _, n := range order {
		n.put(n.keys().RebootRequired(n.agent.Node), "")
		n.expect(n.run("reboot", "--check-triggers"), exitLockHeld, "x9")
	}
	// They have waited for an hour.
	q := queueOf(t, first)
	for i := range q.Entries {
		q.Entries[i].Since = time.Now().Add(-time.Hour)
	}
	q.Freed = time.Now().Add(-time.Hour)
	data, _ := q.Encode()
	first.put(first.keys().GroupQueue("default"), string(data))

	first.expect(first.run("limit", "default", "2"), 0, "2 at a time")
	last, want := order[3], order[0]
	last.expect(last.run("reboot", "--check-triggers"), exitLockHeld, want.agent.Node)
	want.expect(want.run("reboot", "--check-triggers"), 0, "reboot started")
	if holders := first.lockRecord().Holders; len(holders) != 2 || holders[1].Node != want.agent.Node {
		t.Fatalf("holders: %+v, want x9 and %s", holders, want.agent.Node)
	}
	for _, e := range queueOf(t, first).Entries {
		if e.Blocked != "" {
			t.Fatalf("%s marked %q when the limit was raised", e.Node, e.Blocked)
		}
	}
}

// TestOlderDaemonGivesAPlaceBack: a daemon of an older rebootmgr (registered without saying that
// it tells the queue of a place it gives back) holds the lock while a node of this version
// waits for its turn. The older one gives its place back as it does, writing no turn key: the
// node waiting hears it from the lock itself (it holds no watch while such daemons run) and
// takes the place at once, not at its tick.
func TestOlderDaemonGivesAPlaceBack(t *testing.T) {
	nodes := cluster(t, []string{"", ""})
	old, n1 := nodes[0], nodes[1]
	if err := old.agent.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "rebootmgr", Name: "rebootmgr", Meta: map[string]string{"version": "0.1.0", "enabled": "true"}}); err != nil {
		t.Fatal(err)
	}
	putHolder(t, old, lock.Holder{Node: old.agent.Node, Phase: lock.Finishing, Since: time.Now()})
	f, _ := lock.Fleet{Version: lock.Version}.With(old.agent.Node, "default").Encode()
	old.put(old.keys().Holders(), string(f))
	d := n1.startDaemon()
	n1.put(n1.keys().RebootRequired(n1.agent.Node), "")
	fleettest.WaitSeen(t, d.Log.Seen("daemons of an older rebootmgr do not tell the queue"), n1.agent.Node+" waiting, watching the lock")
	if q := queueOf(t, old); len(q.Entries) != 1 || q.Entries[0].Node != n1.agent.Node {
		t.Fatalf("queue: %+v", q.Entries)
	}
	// The older daemon gives its place back: the records written as it writes them, no turn key.
	q := queueOf(t, old)
	q.Freed = time.Now()
	data, _ := q.Encode()
	old.put(old.keys().GroupQueue("default"), string(data))
	old.put(old.keys().Holders(), `{"version":1,"holders":{}}`)
	if _, err := old.kv().Delete(old.keys().Lock(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Log.Seen(`msg="reboot lock taken"`):
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not take the place the older daemon gave back", n1.agent.Node)
	}
}

// TestHealthWaitersHearOnlyTheFront: nodes whose health fails only for a reboot in flight in
// their own group wait in the queue, blocked for that alone (lock.ForRoom), holding their
// watches of health and the locks; the place given back wakes the first of them (two per free
// place), and nobody behind: they hear the change once from the watches they held, and do not
// evaluate. One of those woken takes the place, the rules allowing one once the holder is gone.
func TestHealthWaitersHearOnlyTheFront(t *testing.T) {
	nodes := cluster(t, []string{"", "", "", "", "", ""})
	first := nodes[0]
	first.expect(first.run("limit", "default", "2"), 0)
	for _, n := range nodes {
		n.agent.RegisterService("svc", []string{"rebootmgr", "max_failing=0"}, "passing")
	}
	for _, n := range nodes {
		for _, o := range nodes {
			n.agent.WaitCheck(o.agent.Node, "svc", consultest.ServiceCheckID("svc"), "passing")
		}
	}
	holder := nodes[0].agent.Node
	putHolder(t, first, lock.Holder{Node: holder, Phase: lock.Preparing, Since: time.Now()})
	waiting := nodes[1:]
	daemons := map[string]*daemonRun{}
	for _, n := range waiting {
		d := n.startDaemon()
		n.put(n.keys().RebootRequired(n.agent.Node), "")
		fleettest.WaitSeen(t, d.Log.Seen("holding its watches of the lock"), n.agent.Node+" waiting for its group's reboot in flight")
		daemons[n.agent.Node] = d
	}
	q := queueOf(t, first)
	if len(q.Entries) != len(waiting) {
		t.Fatalf("queue: %+v", q)
	}
	for _, e := range q.Entries {
		if e.Blocked != lock.ForRoom {
			t.Fatalf("%s waits in the queue as %q, want %q: %+v", e.Node, e.Blocked, lock.ForRoom, q)
		}
	}
	before := map[string]int{}
	for name, d := range daemons {
		before[name] = d.Log.Count("sources=[")
	}
	releaseHolder(t, first, holder)
	// Two free places: the first four are told, and the first of them to answer takes one (the
	// rules allow one); the fifth hears nothing.
	taken := make(chan string, len(daemons))
	for _, e := range q.Entries[:4] {
		go func() {
			select {
			case <-daemons[e.Node].Log.Seen(`msg="reboot lock taken"`):
				taken <- e.Node
			case <-t.Context().Done():
			}
		}()
	}
	var head string
	select {
	case head = <-taken:
	case <-time.After(30 * time.Second):
		t.Fatal("none of the first four of the queue took the place")
	}
	last := q.Entries[4].Node
	fleettest.WaitSeen(t, daemons[last].Log.Seen("only the locks or health changed: not evaluating"), last+" hearing the change from its held watches")
	if got := daemons[last].Log.Count("sources=["); got != before[last] {
		t.Fatalf("%s, behind the front, evaluated %d times at the hand-off", last, got-before[last])
	}
	if first.get(first.keys().GroupTurn("default", last)) != nil {
		t.Fatalf("%s, behind the front, was woken", last)
	}
	if holders := first.lockRecord().Holders; len(holders) != 1 || holders[0].Node != head {
		t.Fatalf("holders after the hand-off: %+v", holders)
	}
}
