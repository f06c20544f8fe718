package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

var (
	faultSeed   = flag.Int64("fault-seed", -1, "seed of TestFleetFaults (-1: the fixed seeds 1 and 2, as CI runs; 0: one from the clock; the seed is printed)")
	faultEvents = flag.Int("fault-events", 24, "faults TestFleetFaults injects per seed (raise it for a longer run)")
)

// TestFleetFaults rolls a small OpenStack fleet (two gateways, three controllers, three
// computes in their own group with a limit of 2; quobyte, max_failing=1, shared by controllers
// and computes; the services and rules of fleettest.OpenStack, as script checks; every
// notification POSTed to a webhook) round after round (a node is asked to reboot again soon
// after it finished) beside FleetLock hosts that ask a rebootmgr fleetlock server for places in
// the same groups as Zincati does (one named as a compute, one in a group no operator made; see
// faults_hosts_test.go). Every daemon runs with a clock of its own, seconds to an hour ahead or
// behind, and a cooldown and stay-green of a few seconds of its own (faults_clock_test.go).
// While it rolls, the run kills daemons, restarts daemons with another clock (kill -9 or
// SIGTERM), restarts agents (the server too), makes client agents leave the cluster cleanly and
// come back, forgets a node that left, sets the stop flag for a while, fails services for a
// while, makes tasks fail or hang and VMs refuse to migrate until an operator repairs the node,
// and changes the limit of a group whose nodes wait in its queue, to 1, 2, 3 or auto; the
// webhook answers late (up to 4.5 s) and at times sets the stop flag before it answers a
// "reboot started".
//
// After every step: the fleet's record of holders is the union of the groups' records; every
// place was taken within the group's limit (under auto, a FleetLock host, which runs no rule,
// alone); no group was stopped on a deadline that cannot be true (its holder's reboot within
// its deadline on the run's clock); nobody overtook a live node's turn; an eligible node got its
// place within its bound (faults_queue_test.go). At every FleetLock request: a group no operator
// made is refused unknown_group, a node's name is refused id_in_use while its daemon is
// registered, no place is granted under the stop flag. At every reboot, judged at the moments of
// the daemon's last reads (see the windows in faults_world_test.go): the node holds its place
// in phase rebooting; fewer than the limit in force of its group's other holders (hosts
// included) were rebooting or finishing when it moved there; the stop flag was not set; its own
// services passed, and every rule of every service it runs held, counting as failing every
// other holder anywhere (any phase; a node rebooted and not back yet holds one), every instance
// the catalog showed failing, and every remembered member gone from the catalog; a compute had
// no VM left. Every time a daemon wrote is read back on the run's clock (it knows each daemon's
// offset). A node that left and was forgotten counts no more (forget is refused while Consul
// still lists it); one that comes back is remembered again. Once the faults stop and an
// operator clears what they left, every reboot asked for has happened exactly once and
// finished, computes with their VMs back, and every host has finished its reboot. Reproduce a
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
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) { runFaults(t, seed) })
	}
}

// simNode is a node of the fault run and what the run did to it.
type simNode struct {
	*fleettest.Node
	down      bool
	bootAt    time.Time
	left      bool
	seenGone  bool
	forgotten bool
	failing   map[string]bool
	requests  int
	reboots   int
	// requestAt is when the run asks for the node's next reboot, once it is idle.
	requestAt time.Time
	// logs are the logs of every daemon the node ran, the current one last.
	logs []*fleettest.Log
	// remembered hears, after a forgotten node came back, "" once it is remembered again, or
	// the service it was not remembered for in time.
	remembered <-chan string
	// waiting is closed once the node's daemon waits for an operator.
	waiting <-chan struct{}
	// stopWatch ends the watch for the node leaving the catalog, after it left; stopFailures
	// the measures of its failures showing.
	stopWatch    func()
	stopFailures map[string]func()
	// offset is its daemon's clock (see faults_clock_test.go), cooldown and stayGreen its
	// settings; lives its daemons, live whether one runs, since readyAt (its first evaluation
	// done); diedAt when the last one ended.
	offset, cooldown, stayGreen time.Duration
	lives                       []life
	live                        bool
	readyAt, diedAt             time.Time
	// backAt is when its agent last came back after leaving, agentAt when it was last restarted.
	backAt, agentAt time.Time
	// eligibleFrom is when the run first saw it eligible for its place, and what it saw then
	// (see faults_queue_test.go).
	eligibleFrom time.Time
	eligibleSaw  string
}

// faultRun is one seeded run of TestFleetFaults.
type faultRun struct {
	t     *testing.T
	rng   *rand.Rand
	bin   string
	fleet *fleettest.Fleet
	nodes []*simNode
	w     *world
	// places are the places seen taken: node -> since.
	places map[string]time.Time
	// pending are the ends of the episodes under way; episodes counts the episodes of each
	// key, so that only the end of the latest one is done.
	pending  []pending
	episodes map[string]int
	cov      coverage
	// hosts are the FleetLock hosts, served at hostsURL.
	hosts    []*host
	hostsURL string
	// serverAt is when the server's agent was last restarted; prev the last read of the locks.
	serverAt time.Time
	prev     stateView
}

// stateView is one read of the locks (see fleettest.State): made after from, seen at at.
type stateView struct {
	fleettest.State
	from, at time.Time
}

// state reads the locks.
func (r *faultRun) state() stateView {
	r.t.Helper()
	from := time.Now()
	s := r.fleet.State()
	return stateView{State: s, from: from, at: time.Now()}
}

// coverage is what the run went through, logged at its end.
type coverage struct {
	reboots, leaves, forgets, limitChanges int
	// mostRebooting is, per group, the most holders seen rebooting or finishing at once;
	// mostHolders the most holders.
	mostRebooting, mostHolders map[string]int
	// quobyteAtOnce is the most quobyte nodes seen holding places at once: max_failing=1 lets
	// two take one; a forgotten holder that comes back makes a third (then none may reboot).
	quobyteAtOnce int
	// underLimit and atLimit count the steps in which a compute asked to reboot waited for its
	// place with the group's lock below its limit (health, the shared quorum, or another gate
	// held it back), and at its limit.
	underLimit, atLimit int
	// judged is the longest from the webhook's answer to the daemon's last read (the health
	// verdict, the move to rebooting, the last read); spawn the longest from that read's log
	// line to the reboot command's clock.
	judged, spawn time.Duration
	// The clocks, the hosts and the queue: clock jumps; the hosts' asks and reboots, their
	// refusals for a group no operator made and for a node's name; limits changed while a node
	// of the group waited in its queue, and to auto; entries marked as having missed their
	// turn; waits of nodes eligible for their place, and the longest.
	jumps, hostAsks, hostReboots, unknownGroup, idInUse int
	limitsWhileWaiting, autoLimits, missed, eligible    int
	longestWait                                         time.Duration
}

func runFaults(t *testing.T, seed uint64) {
	t.Logf("seed %d (go test ./cmd/rebootmgr -run TestFleetFaults -fault-seed=%d)", seed, seed)
	r := &faultRun{
		t:        t,
		rng:      rand.New(rand.NewPCG(seed, seed)),
		bin:      fleettest.Build(t, true),
		w:        newWorld(),
		places:   map[string]time.Time{},
		episodes: map[string]int{},
		cov:      coverage{mostRebooting: map[string]int{}, mostHolders: map[string]int{}},
	}
	hook := webhook(t, r.w, seed)
	r.fleet = fleettest.New(t, fleettest.OpenStack(2, 3, 3), fleettest.Options{
		Binary:        r.bin,
		CheckInterval: checkInterval.String(),
		DaemonArgs:    []string{"--task-timeout", "2s", "--interval", "3s", "--notify-url", hook},
	})
	for _, n := range r.fleet.Nodes {
		sn := &simNode{Node: n, failing: map[string]bool{}, stopFailures: map[string]func(){}}
		r.drawSettings(sn)
		r.nodes = append(r.nodes, sn)
	}
	t.Logf("nodes:%s", r.clocks())
	first := r.nodes[0]
	r.w.mu.Lock()
	r.w.first = first.Node
	r.w.mu.Unlock()
	watchHolders(t, r.w, first.Node)
	for group := range r.fleet.Groups() {
		r.w.limits[group] = []limitChange{{limit: 1}}
	}
	r.setLimit(fleettest.Compute, "2")
	for _, n := range r.nodes {
		r.start(n)
	}
	r.hostsURL = r.hostsServer()
	r.hosts = r.newHosts()
	r.prev = r.state()
	// Every daemon's health watch remembers the members of its services: wait for all, so
	// that a node that leaves counts from the start.
	for _, n := range r.nodes {
		r.waitRemembered(n)
	}

	// The faults come from a shuffled deck, shuffled again once dealt: every kind comes within
	// each round of them, even in a short run.
	faults := r.faults()
	var deck []int
	for i := range *faultEvents {
		if len(deck) == 0 {
			deck = r.rng.Perm(len(faults))
		}
		f := faults[deck[0]]
		deck = deck[1:]
		n := r.nodes[r.rng.IntN(len(r.nodes))]
		for f.fits != nil && !f.fits(n) {
			n = r.nodes[r.rng.IntN(len(r.nodes))]
		}
		wait := time.Now().Add(r.between(100*time.Millisecond, 500*time.Millisecond))
		for time.Now().Before(wait) {
			r.step("before fault " + fmt.Sprint(i))
			time.Sleep(10 * time.Millisecond)
		}
		if n.down || (n.left && !f.whenLeft) {
			continue
		}
		if f.global {
			t.Logf("fault %d: %s", i, f.name)
		} else {
			t.Logf("fault %d: %s on %s", i, f.name, n.Name)
		}
		f.do(n)
		r.step("after fault " + fmt.Sprint(i))
	}
	r.heal()
	r.finish()
}

// fault is one kind of fault; whenLeft: it applies to a node whose agent left, too; fits (when
// set) says which nodes it is for; global: it is not about the node it is given. Most faults
// are episodes: the run ends them a while later, as an operator or the node itself would, so
// that the fleet keeps rolling through them.
type fault struct {
	name     string
	whenLeft bool
	do       func(n *simNode)
	fits     func(n *simNode) bool
	global   bool
}

// between is a random duration from lo to hi.
func (r *faultRun) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)))
}

func (r *faultRun) faults() []fault {
	t := r.t
	first := r.nodes[0]
	// broken makes a node's pre-boot tasks fail or hang, or its VMs stuck (the node is then
	// disabled); an operator repairs it and enables it again 2 to 8 s later.
	broken := func(set func(n *simNode)) func(n *simNode) {
		return func(n *simNode) {
			set(n)
			r.episode("repair/"+n.Name, r.between(2*time.Second, 8*time.Second), "an operator repairs "+n.Name+" and enables it", func() { r.repair(n) })
		}
	}
	return []fault{
		{"kill -9 the daemon", false, func(n *simNode) { r.kill9(n); r.start(n) }, nil, false},
		{"jump the daemon's clock: restart it with another offset", false, r.jump, nil, false},
		{"kill -9 and restart the Consul agent (" + first.Name + "'s is the server)", false, func(n *simNode) {
			n.Agent.Kill()
			n.Agent.Start()
			n.agentAt = time.Now()
			if n == first {
				r.serverAt = n.agentAt
			}
		}, nil, false},
		{"set the stop flag for 0.5 to 4 s", true, func(*simNode) {
			r.w.mu.Lock()
			defer r.w.mu.Unlock()
			if err := r.w.setStop("fault run", r.between(500*time.Millisecond, 4*time.Second)); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
		{"fail a service for 0.5 to 6 s", true, func(n *simNode) {
			var ok []string
			for _, svc := range n.Services {
				if !n.failing[svc.Name] {
					ok = append(ok, svc.Name)
				}
			}
			if len(ok) == 0 {
				return
			}
			svc := ok[r.rng.IntN(len(ok))]
			r.setFailing(n, svc, true)
			t.Logf("  %s failing", svc)
			r.episode("fail/"+n.Name+"/"+svc, r.between(500*time.Millisecond, 6*time.Second), n.Name+"'s "+svc+" heals", func() { r.setFailing(n, svc, false) })
		}, nil, false},
		{"make the pre-boot task fail", true, broken(func(n *simNode) { n.SetTaskFails(true) }), nil, false},
		{"make the pre-boot task hang", true, broken(func(n *simNode) { n.SetTaskHangs(true) }), nil, false},
		{"make the VMs stuck", true, broken(func(n *simNode) { n.SetVMsStuck(true) }), func(n *simNode) bool { return n.Compute }, false},
		{"change the limit of a group with nodes waiting in its queue (1 to 3, or auto)", true, r.changeLimit, nil, true},
		{"the agent leaves the cluster cleanly, back 1 to 10 s later (two at most away)", false, func(n *simNode) {
			away := 0
			for _, m := range r.nodes {
				if m.left {
					away++
				}
			}
			if away >= 2 {
				t.Log("  two are away already")
				return
			}
			r.leave(n)
			r.episode("leave/"+n.Name, r.between(time.Second, 10*time.Second), n.Name+" comes back", func() { r.comeBack(n) })
		}, func(n *simNode) bool { return n != first }, false},
		{"an operator forgets a node that left", true, func(*simNode) {
			var left []*simNode
			for _, m := range r.nodes {
				if m.left && !m.forgotten {
					left = append(left, m)
				}
			}
			if len(left) == 0 {
				t.Log("  no node is away")
				return
			}
			r.forget(left[r.rng.IntN(len(left))])
		}, nil, true},
	}
}

// pending is the end of an episode, due at at.
type pending struct {
	at   time.Time
	what string
	do   func()
}

// episode has the run do end after d; a later episode of the same key replaces it.
func (r *faultRun) episode(key string, d time.Duration, what string, end func()) {
	r.episodes[key]++
	id := r.episodes[key]
	r.pending = append(r.pending, pending{at: time.Now().Add(d), what: what, do: func() {
		if r.episodes[key] == id {
			end()
		}
	}})
}

func (r *faultRun) node(name string) *simNode {
	for _, n := range r.nodes {
		if n.Name == name {
			return n
		}
	}
	r.t.Fatalf("no node %s", name)
	return nil
}

// rebootmgr runs an operator's command against the server's agent.
func (r *faultRun) rebootmgr(args ...string) string {
	r.t.Helper()
	out, err := r.try(args...)
	if err != nil {
		r.t.Fatalf("rebootmgr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// try runs an operator's command that may fail.
func (r *faultRun) try(args ...string) (string, error) {
	cmd := exec.Command(r.bin, append(args, "--consul-addr", r.nodes[0].Agent.HTTPAddr)...)
	cmd.Env = fleettest.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start starts n's daemon, with its clock and settings.
func (r *faultRun) start(n *simNode) {
	n.lives = append(n.lives, life{offset: n.offset, from: time.Now()})
	n.Start(n.daemonArgs()...)
	n.live, n.readyAt = true, time.Now()
	n.logs = append(n.logs, n.Daemon.Log)
	n.waiting = n.Daemon.Log.Seen("waiting for an operator")
}

// request asks for n's reboot through its reboot_required key, unless one is asked for already:
// every request is then one reboot. It goes through the server's agent, n's may be away.
func (r *faultRun) request(n *simNode) {
	ok, _, err := r.nodes[0].KV().CAS(&api.KVPair{Key: n.Keys().RebootRequired(n.Name), ModifyIndex: 0}, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if ok {
		n.requests++
	}
}

func (r *faultRun) setLimit(group, limit string) {
	from := time.Now()
	r.rebootmgr("limit", group, limit)
	places := math.MaxInt
	if limit != "auto" {
		places, _ = strconv.Atoi(limit)
	}
	r.w.mu.Lock()
	r.w.limits[group] = append(r.w.limits[group], limitChange{from: from, to: time.Now(), limit: places})
	r.w.mu.Unlock()
	r.t.Logf("  group %s: limit %s", group, limit)
}

// changeLimit sets the limit of a group in whose queue nodes wait (either group when none
// does) to 1, 2, 3 or auto.
func (r *faultRun) changeLimit(*simNode) {
	s := r.state()
	var groups []string
	for group, q := range s.Queues {
		if len(q.Entries) > 0 {
			groups = append(groups, group)
		}
	}
	if len(groups) == 0 {
		for group := range r.fleet.Groups() {
			groups = append(groups, group)
		}
	} else {
		r.cov.limitsWhileWaiting++
	}
	slices.Sort(groups)
	group := groups[r.rng.IntN(len(groups))]
	// The first change is to auto, so that even a short run has one; then 1 to 3 or auto.
	limit := "auto"
	if r.cov.limitChanges > 0 {
		limit = []string{"1", "2", "3", "auto"}[r.rng.IntN(4)]
	}
	if limit == "auto" {
		r.cov.autoLimits++
	}
	r.t.Logf("  queue of group %s: %s", group, fmtQueue(s.Queues[group]))
	r.setLimit(group, limit)
	r.cov.limitChanges++
}

// setFailing fails or heals a service of n. A failure counts from the moment the catalog
// shows it (watchFailure) until the run heals it; on a node away it shows once the node is back
// (leave, comeBack).
func (r *faultRun) setFailing(n *simNode, svc string, failing bool) {
	w := r.w
	if stop := n.stopFailures[svc]; stop != nil {
		stop()
		delete(n.stopFailures, svc)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !failing {
		w.of(w.failing, n.Name+"/"+svc).end(time.Now())
	}
	n.failing[svc] = failing
	n.SetFailing(svc, failing)
	if failing && !n.left {
		n.stopFailures[svc] = watchFailure(r.t, w, r.nodes[0].Node, n.Name, svc, time.Now())
	}
}

// failuresShow has the failures of n's services counted again when n comes back (show), or no
// more when it leaves.
func (r *faultRun) failuresShow(n *simNode, show bool) {
	w := r.w
	for svc, stop := range n.stopFailures {
		stop()
		delete(n.stopFailures, svc)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for svc, failing := range n.failing {
		switch {
		case !failing:
		case show:
			n.stopFailures[svc] = watchFailure(r.t, w, r.nodes[0].Node, n.Name, svc, time.Now())
		default:
			w.of(w.failing, n.Name+"/"+svc).end(time.Now())
		}
	}
}

// repair is what an operator does to a node whose tasks failed: fix its tasks and VMs and
// clear its disabled mark.
func (r *faultRun) repair(n *simNode) {
	n.SetTaskFails(false)
	n.SetTaskHangs(false)
	n.SetVMsStuck(false)
	if _, err := r.nodes[0].KV().Delete(n.Keys().Disabled(n.Name), nil); err != nil {
		r.t.Fatal(err)
	}
}

// leave makes n's agent leave the cluster cleanly; from the moment the run sees its node gone
// from the catalog (a watch of its own: the leader deregisters it when it hears of the leave,
// or at its next reconcile, up to a minute later) it counts as failing for every service it
// runs, as long as it is remembered.
func (r *faultRun) leave(n *simNode) {
	r.failuresShow(n, false)
	n.Agent.Leave()
	n.left = true
	r.cov.leaves++
	ctx, cancel := context.WithCancel(r.t.Context())
	done := make(chan struct{})
	n.stopWatch = func() { cancel(); <-done }
	go func() {
		defer close(done)
		at, err := r.fleet.WaitGone(ctx, n.Name)
		if err != nil {
			return
		}
		r.w.mu.Lock()
		r.w.of(r.w.gone, n.Name).begin(at)
		r.w.mu.Unlock()
	}()
}

// comeBack starts n's agent again, if it is away; its services come back from its data dir,
// and rebootmgr remembers it again (if it was forgotten) from its health watches.
func (r *faultRun) comeBack(n *simNode) {
	if !n.left {
		return
	}
	n.stopWatch()
	r.w.mu.Lock()
	r.w.of(r.w.gone, n.Name).end(time.Now())
	r.w.mu.Unlock()
	n.Agent.Start()
	n.left = false
	n.backAt = time.Now()
	r.failuresShow(n, true)
	if n.forgotten {
		// It counts again once remembered; step waits for that, the fleet rolling on.
		done := make(chan string, 1)
		n.remembered = done
		go func() {
			for _, svc := range n.Services {
				if !r.fleet.WaitMember(svc.Name, n.Name, rememberTimeout) {
					done <- svc.Name
					return
				}
			}
			done <- ""
		}()
	}
}

// forget is an operator's rebootmgr forget of a node that left: once forgotten it counts no
// more, not even as an instance. It is refused while Consul still lists the node (the leader
// deregisters a node that left when it hears of it, or up to a minute later).
func (r *faultRun) forget(n *simNode) {
	from := time.Now()
	out, err := r.try("forget", n.Name)
	out = strings.TrimSpace(out)
	if err != nil {
		if !strings.Contains(out, "still in Consul's catalog") {
			r.t.Fatalf("rebootmgr forget %s: %v: %s", n.Name, err, out)
		}
		r.t.Logf("  refused: %s", out)
		return
	}
	n.stopWatch()
	r.w.mu.Lock()
	r.w.of(r.w.gone, n.Name).end(from)
	r.w.mu.Unlock()
	r.cov.forgets++
	n.forgotten = true
	r.t.Logf("  %s", out)
}

// rememberTimeout bounds how long rebootmgr may take to remember a node running a service:
// the daemons' health watches see it at once, unless their agent just came back and they wait
// out a backoff (up to 30 s).
const rememberTimeout = 40 * time.Second

// waitRemembered waits until n is remembered as a member of each of its services.
func (r *faultRun) waitRemembered(n *simNode) {
	r.t.Helper()
	for _, svc := range n.Services {
		if !r.fleet.WaitMember(svc.Name, n.Name, rememberTimeout) {
			r.t.Fatalf("%s runs %s and is in the catalog, but rebootmgr did not remember it as a member within %s", n.Name, svc.Name, rememberTimeout)
		}
	}
}

// step handles what happened since the last step: reboots, boots, ends of episodes, nodes that
// wait for an operator, nodes to ask to reboot again; and checks the locks.
func (r *faultRun) step(when string) {
	r.t.Helper()
	for _, n := range r.nodes {
		times := n.RebootTimes()
		for n.reboots < len(times) {
			r.reboot(n, times[n.reboots])
		}
		if n.down && !time.Now().Before(n.bootAt) {
			r.boot(n)
		}
		r.operator(n)
		select {
		case missing := <-n.remembered:
			if missing != "" {
				r.t.Fatalf("%s came back running %s, but rebootmgr did not remember it as a member again within %s", n.Name, missing, rememberTimeout)
			}
			n.forgotten, n.remembered = false, nil
		default:
		}
		r.w.mu.Lock()
		gone := r.w.of(r.w.gone, n.Name).on()
		r.w.mu.Unlock()
		if gone && !n.seenGone {
			r.t.Logf("  %s is gone from the catalog", n.Name)
		}
		n.seenGone = gone
	}
	now := time.Now()
	var later []pending
	for _, p := range r.pending {
		if now.Before(p.at) {
			later = append(later, p)
			continue
		}
		r.t.Logf("  %s", p.what)
		p.do()
	}
	r.pending = later
	r.endStop()
	r.stepHosts()
	s := r.state()
	r.checkStops(when, s)
	r.checkTurns(when, r.prev, s)
	r.checkProgress(when, s)
	r.checkLocks(when, s)
	r.askAgain(s)
	r.prev = s
}

// endStop removes the stop flag once its time is up.
func (r *faultRun) endStop() {
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.calm || !w.stop.on() || time.Now().Before(w.stopUntil) {
		return
	}
	if err := w.clearStop(); err != nil {
		r.t.Fatal(err)
	}
}

// askAgain asks for the reboot of every idle node (not asked, holding no place, up) 0 to 2 s
// after it became idle, until the faults are over.
func (r *faultRun) askAgain(s stateView) {
	r.w.mu.Lock()
	calm := r.w.calm
	r.w.mu.Unlock()
	for _, n := range r.nodes {
		_, holds := s.Fleet.Holders[n.Name]
		if calm || s.Requested[n.Name] || holds || n.down || n.left {
			n.requestAt = time.Time{}
			continue
		}
		switch {
		case n.requestAt.IsZero():
			n.requestAt = time.Now().Add(r.between(0, 2*time.Second))
		case !time.Now().Before(n.requestAt):
			r.request(n)
			n.requestAt = time.Time{}
		}
	}
}

// operator unlocks a node whose daemon was killed between recording its reboot and running the
// reboot command: its next daemon reports that the node did not reboot and waits for one.
func (r *faultRun) operator(n *simNode) {
	if n.down || n.left || n.RebootCount() != n.reboots {
		return
	}
	select {
	case <-n.waiting:
	default:
		return
	}
	if h, ok := n.Lock().Holder(n.Name); !ok || h.Phase != lock.Rebooting || h.FleetLock() {
		return
	}
	r.t.Logf("operator: %s did not reboot, unlocking it", n.Name)
	if out := r.rebootmgr("unlock", n.Name, "--force", "--group", n.Group); !strings.Contains(out, "released") {
		r.t.Fatalf("unlock %s: %s", n.Name, out)
	}
	r.kill9(n)
	r.start(n)
}

// checkLocks checks the locks as one read saw them: the fleet's record of holders is the union
// of the groups' records, and every place was taken within the group's limit (a holder has at
// least as many before it in its group's record as there were when it took its place).
func (r *faultRun) checkLocks(when string, s stateView) {
	t, w := r.t, r.w
	t.Helper()
	now := s.at
	inGroups := map[string]string{}
	quobyte := 0
	for group, rec := range s.Locks {
		going := 0
		for i, h := range rec.Holders {
			inGroups[h.Node] = group
			if h.Phase != lock.Preparing {
				going++
			}
			if m := r.nodeNamed(h.Node); m != nil && !r.isHost(h) && (!m.left || !m.forgotten) && slices.ContainsFunc(m.Services, func(s fleettest.Service) bool { return s.Name == "quobyte" }) {
				quobyte++
			}
			if since, ok := r.places[h.Node]; ok && since.Equal(h.Since) {
				continue
			}
			r.places[h.Node] = h.Since
			// The place was taken on the read of a view (the limit in it) after its since was
			// read from the taker's clock, on the run's clock.
			taken, _ := r.realTimes(h, h.Since)
			w.mu.Lock()
			limit := w.maxLimit(group, taken.Add(-readLag), now)
			auto := w.minLimit(group, taken.Add(-readLag), now) == math.MaxInt
			w.mu.Unlock()
			if i >= limit {
				t.Fatalf("%s: %s took a place in group %s with %d holders before it, limit at most %d: %+v", when, h.Node, group, i, limit, rec.Holders)
			}
			// Under auto a FleetLock host (no node: no rule over the fleet) reboots alone, both ways.
			lone := func(h lock.Holder) bool { return r.host(h.Node) != nil }
			if auto && i > 0 && (lone(h) || slices.ContainsFunc(rec.Holders[:i], lone)) {
				t.Fatalf("%s: %s took a place in group %s beside %+v under the limit auto, where a FleetLock host, running no rule, reboots alone", when, h.Node, group, rec.Holders[:i])
			}
		}
		r.cov.mostHolders[group] = max(r.cov.mostHolders[group], len(rec.Holders))
		r.cov.mostRebooting[group] = max(r.cov.mostRebooting[group], going)
	}
	r.cov.quobyteAtOnce = max(r.cov.quobyteAtOnce, quobyte)
	for _, n := range r.nodes {
		if _, holds := s.Fleet.Holders[n.Name]; n.Compute && s.Requested[n.Name] && !holds && !n.down && !n.left {
			if len(s.Locks[n.Group].Holders) < s.Limits[n.Group].Places(0, true) {
				r.cov.underLimit++
			} else {
				r.cov.atLimit++
			}
		}
	}
	if fmt.Sprint(inGroups) != fmt.Sprint(s.Fleet.Holders) {
		t.Fatalf("%s: the fleet's record of holders %v is not the groups' %v", when, s.Fleet.Holders, inGroups)
	}
}

// lastRead is when n's daemon logged, right after its last read, that it runs the reboot
// command it ran at cmd: the latest such line at or before cmd in any of its logs. The line
// may still be on its way from the daemon's stderr: the current log is waited for.
func (r *faultRun) lastRead(n *simNode, cmd time.Time) time.Time {
	r.t.Helper()
	const msg = "running the reboot command"
	deadline := time.After(10 * time.Second)
	for {
		var best time.Time
		for _, l := range n.logs {
			for _, at := range logTimes(l.String(), msg) {
				if !at.After(cmd) && at.After(best) {
					best = at
				}
			}
		}
		if !best.IsZero() && cmd.Sub(best) < 10*time.Second {
			return best
		}
		// The line may be in a log of a daemon killed meanwhile, still being copied from its
		// stderr: the current log's next line, or a short while, and every log is read again.
		current := n.logs[len(n.logs)-1]
		select {
		case <-current.SeenN(msg, current.Count(msg)+1):
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("%s ran its reboot command at %s, but no daemon of it logged %q before", n.Name, cmd.Format(time.StampMicro), msg)
		}
	}
}

// reboot handles the reboot command n ran at cmd: it checks every invariant at the moments
// that matter, takes the machine down, and has it boot a little later.
func (r *faultRun) reboot(n *simNode, cmd time.Time) {
	t, w := r.t, r.w
	t.Helper()
	n.reboots++
	r.cov.reboots++
	if n.down {
		t.Fatalf("%s ran its reboot command again at %s before it came back", n.Name, cmd.Format(time.StampMicro))
	}
	read := r.lastRead(n, cmd)
	s := r.state()
	w.mu.Lock()
	defer w.mu.Unlock()
	announced, ok := w.announced[n.Name]
	if !ok || announced.After(read.Add(logPrecision)) {
		t.Fatalf("%s rebooted without the webhook answering its \"reboot started\" before its last read at %s (answered: %v)", n.Name, read.Format(time.StampMilli), announced)
	}
	r.cov.judged = max(r.cov.judged, read.Sub(announced))
	r.cov.spawn = max(r.cov.spawn, cmd.Sub(read))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+" (reboot announced and answered at %s, last read logged at %s, reboot command at %s)",
			append(args, announced.Format(time.StampMicro), read.Format(time.StampMilli), cmd.Format(time.StampMicro))...)
	}

	rec := s.Locks[n.Group]
	me, ok := rec.Holder(n.Name)
	if !ok || me.Phase != lock.Rebooting || me.FleetLock() {
		fail("%s rebooted while the lock of group %s was %+v", n.Name, n.Group, rec.Holders)
	}
	moved, _ := r.realTimes(me, me.RebootStarted)
	if moved.After(cmd) {
		fail("%s rebooted at %s, before its move to rebooting at %s (both on the run's clock): %+v", n.Name, cmd.Format(time.StampMicro), moved.Format(time.StampMicro), me)
	}
	// The move to rebooting: fewer than the limit of the group's other holders were rebooting
	// or finishing (those that surely moved before it, on the run's clock: a FleetLock host is
	// rebooting from its grant), the limit being any in force from the move to the last read.
	going := 0
	for _, h := range rec.Holders {
		if h.Node == n.Name || h.Phase == lock.Preparing {
			continue
		}
		start := h.RebootStarted
		if start.IsZero() {
			start = h.Since
		}
		if _, latest := r.realTimes(h, start); latest.Before(moved) {
			going++
		}
	}
	if limit := w.maxLimit(n.Group, moved.Add(-readLag), read); going >= limit {
		fail("%s rebooted with %d other nodes of group %s rebooting, limit %d: %+v", n.Name, going, n.Group, limit, rec.Holders)
	}
	if w.stop.held(read.Add(-readLag), read) {
		fail("%s rebooted with the stop flag set (%+v)", n.Name, w.stop)
	}
	r.checkRules(n, announced, read, s, fail)
	if n.Compute && n.VMs() != 0 {
		fail("compute %s rebooted with %d VMs running", n.Name, n.VMs())
	}
	t.Logf("%s rebooted (holders %v)", n.Name, s.Fleet.Nodes())
	// The machine goes down at once, its services with it; it boots a little later.
	r.kill9(n)
	n.down = true
	n.SetDown(true)
	n.bootAt = time.Now().Add(r.between(100*time.Millisecond, 500*time.Millisecond))
}

// failingFor says why m's instance of svc surely failed in the last health verdict of a node,
// whose reads came after from and before until ("" when it did not): failed, as the catalog
// showed; gone from the catalog while remembered; holding a place in a lock (a node rebooted
// and not back yet holds one).
func (r *faultRun) failingFor(m *simNode, svc string, from, until time.Time, s stateView) string {
	w := r.w
	_, holds := s.Fleet.Holders[m.Name]
	seen, saw := w.holding[m.Name]
	switch {
	case w.of(w.failing, m.Name+"/"+svc).held(from, until):
		return "failing"
	case w.of(w.gone, m.Name).held(from, until):
		return "gone from the catalog"
	case holds && saw && seen.Before(from):
		return "holds a place"
	}
	return ""
}

// checkRules checks at n's reboot every rule of every service n runs, as its last health
// verdict had to see the fleet: that verdict's reads came after the webhook answered
// (announced) and before the last read (read).
func (r *faultRun) checkRules(n *simNode, announced, read time.Time, s stateView, fail func(string, ...any)) {
	t := r.t
	t.Helper()
	for _, svc := range n.Services {
		rules, err := health.ParseRules(svc.Tags)
		if err != nil {
			t.Fatal(err)
		}
		if why := r.failingFor(n, svc.Name, announced, read, stateView{}); why != "" {
			fail("%s rebooted with its own %s %s", n.Name, svc.Name, why)
		}
		if rules.LocalOnly {
			continue
		}
		// The instances: every node running svc but one away and forgotten (gone from the
		// catalog and from rebootmgr's members). One that came back is in the catalog again.
		var members []*simNode
		for _, m := range r.fleet.Running(svc.Name) {
			if m := r.node(m.Name); !m.left || !m.forgotten {
				members = append(members, m)
			}
		}
		var failing []string
		for _, m := range members {
			if m.Name == n.Name {
				continue
			}
			if why := r.failingFor(m, svc.Name, announced, read, s); why != "" {
				failing = append(failing, m.Name+" "+why)
			}
		}
		passing := len(members) - len(failing)
		switch {
		case rules.MinPassing >= 0 && passing < rules.MinPassing:
			fail("%s rebooted with %s passing on %d of %d (min_passing=%d): %s", n.Name, svc.Name, passing, len(members), rules.MinPassing, strings.Join(failing, ", "))
		case rules.MaxFailing >= 0 && len(failing) > rules.MaxFailing:
			fail("%s rebooted with %s failing on %d of %d (max_failing=%d): %s", n.Name, svc.Name, len(failing), len(members), rules.MaxFailing, strings.Join(failing, ", "))
		case !rules.Quorum() && len(failing) > 0:
			fail("%s rebooted with %s failing on %d of %d (all must pass): %s", n.Name, svc.Name, len(failing), len(members), strings.Join(failing, ", "))
		}
	}
}

// boot brings a rebooted machine back with a new boot id, and starts its daemon; an agent that
// had left the cluster starts again with the machine.
func (r *faultRun) boot(n *simNode) {
	n.Boot()
	n.down = false
	r.comeBack(n)
	r.start(n)
}

// heal ends the faults: the episodes under way end at once, and no node is asked to reboot
// again.
func (r *faultRun) heal() {
	t, w := r.t, r.w
	t.Log("faults over: healing")
	r.pending = nil
	w.mu.Lock()
	w.calm = true
	err := w.clearStop()
	w.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r.nodes {
		r.comeBack(n)
		r.repair(n)
		for svc, failing := range n.failing {
			if failing {
				r.setFailing(n, svc, false)
			}
		}
	}
}

// finish waits until every reboot asked for has happened and finished, and checks what is left.
func (r *faultRun) finish() {
	t := r.t
	deadline := time.Now().Add(4 * time.Minute)
	for {
		r.step("while healing")
		s := r.prev
		busy := r.hostsBusy() || slices.ContainsFunc(r.nodes, func(n *simNode) bool { return s.Requested[n.Name] || n.remembered != nil })
		if !busy && len(s.Fleet.Holders) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range r.nodes {
				h, _ := s.Locks[n.Group].Holder(n.Name)
				fmt.Fprintf(&b, "%s: reboots %d of %d asked, asked now %v, holder %+v\n", n.Name, n.reboots, n.requests, s.Requested[n.Name], h)
			}
			t.Fatalf("the fleet did not finish after the faults stopped:\n%s", b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range r.nodes {
		if n.reboots != n.requests {
			t.Errorf("%s rebooted %d times for %d requests", n.Name, n.reboots, n.requests)
		}
		if n.Compute && n.VMs() != fleettest.VMsPerCompute {
			t.Errorf("compute %s has %d VMs after its post-boot tasks, want %d", n.Name, n.VMs(), fleettest.VMsPerCompute)
		}
	}
	c := r.cov
	r.w.mu.Lock()
	slow, stops, visible := r.w.slowAnswers, r.w.webhookStops, r.w.visible
	r.w.mu.Unlock()
	t.Logf("covered: %d reboots; most holders at once %v, rebooting or finishing %v; quobyte nodes holding at once: %d; a compute waited for its place in %d steps below the limit, %d at it; %d leaves, %d forgets, %d limit changes; webhook: %d slow answers, %d stop flags set",
		c.reboots, c.mostHolders, c.mostRebooting, c.quobyteAtOnce, c.underLimit, c.atLimit, c.leaves, c.forgets, c.limitChanges, slow, stops)
	t.Logf("clocks: %d jumps; FleetLock hosts: %d asks, %d reboots, %d refused for a group no operator made, %d for a node's name; limits: %d changed with nodes waiting, %d to auto; queue: %d entries marked as having missed their turn, %d nodes eligible for their place, the longest waited %s",
		c.jumps, c.hostAsks, c.hostReboots, c.unknownGroup, c.idInUse, c.limitsWhileWaiting, c.autoLimits, c.missed, c.eligible, c.longestWait)
	t.Logf("longest: a failure to show in the catalog %s (check interval %s); the webhook's answer to the last read %s; the last read's log line to the reboot command %s",
		visible, checkInterval, c.judged, c.spawn)
	// No key is lost or corrupted: whatever is left under the prefix reads cleanly.
	pairs, _, err := r.nodes[0].KV().List(store.DefaultPrefix+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if (strings.HasSuffix(p.Key, "/lock") || strings.HasSuffix(p.Key, "/history") || strings.HasSuffix(p.Key, "/holders")) && !json.Valid(p.Value) {
			t.Errorf("corrupted %s: %q", p.Key, p.Value)
		}
	}
}
