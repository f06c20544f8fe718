package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// Result is what a run found.
type Result struct {
	Seed                  uint64
	Nodes, Steps, Faults  int
	Reboots               int
	Violations            []string
	Took                  time.Duration // true time from the ask to the last reboot's end
	Bound                 time.Duration // the liveness bound the run was held to
	HandoffRequestsMedian int
	// Requests are the fleet's Consul requests in the whole run; RollRequests from the first ask
	// on.
	Requests, RollRequests int
	// PassedLive are the nodes passed over in their queue while their daemon ran (see
	// Config.StrictTurns).
	PassedLive int
	// JoinRequests are the fleet's requests from the first ask until every node asked ended a
	// run (-1: some never did); LargestRecord the largest value of rebootmgr's records written
	// (its history aside, whose bound is its own).
	JoinRequests, LargestRecord int
	// PythonNodes run the Python rebootmgr; PythonReboots are their reboots, PythonFindings what
	// the Python code itself did that the daemons cannot answer for (see Config.PythonEvery).
	PythonNodes, PythonReboots, PythonFindings int
}

// Summary is the run's last line.
func (r Result) Summary() string {
	ratio := 0.0
	if r.Bound > 0 {
		ratio = r.Took.Seconds() / r.Bound.Seconds()
	}
	perReboot := 0
	if r.Reboots > 0 {
		perReboot = r.RollRequests / r.Reboots
	}
	join := -1
	if r.JoinRequests >= 0 && r.Nodes > 0 {
		join = r.JoinRequests / r.Nodes
	}
	s := fmt.Sprintf("sim: nodes=%d seed=%d steps=%d faults=%d reboots=%d violations=%d passed_live=%d join_requests_per_node=%d handoff_requests_p50=%d requests_per_reboot=%d requests=%d largest_record=%d roll=%s roll_vs_bound=%.2f",
		r.Nodes, r.Seed, r.Steps, r.Faults, r.Reboots, len(r.Violations), r.PassedLive, join, r.HandoffRequestsMedian, perReboot, r.Requests, r.LargestRecord, r.Took.Round(time.Second), ratio)
	if r.PythonNodes > 0 {
		s += fmt.Sprintf(" python_nodes=%d python_reboots=%d python_findings=%d", r.PythonNodes, r.PythonReboots, r.PythonFindings)
	}
	return s
}

// Run runs the fleet: every daemon starts, an operator asks every node to reboot, the plan's
// faults befall it; the run ends when every node asked rebooted and gave its place back, at
// the first violation, or at the liveness bound.
func (w *World) Run() Result {
	for _, n := range w.nodes {
		w.start(n)
	}
	for _, h := range w.hosts {
		w.startHost(h)
	}
	plan := w.plan()
	w.schedule(plan)
	w.scheduleFlood()
	for _, j := range w.cfg.ServerJumps {
		w.sched.add(epoch.Add(j.At), "fleetlock", "jump", func() {
			w.log("fleetlock", "the FleetLock server's clock jumps %s", j.By)
			w.jumpServer(j.By)
		})
	}
	// An operator asks every node to reboot, and again halfway through the faults: the second
	// wave meets nodes fresh from a reboot, cooldowns and the faults still to come.
	for i := range w.cfg.Waves {
		at := time.Second + w.cfg.FaultTime*time.Duration(i)/time.Duration(w.cfg.Waves)
		w.sched.add(epoch.Add(at), "op", "ask", func() { w.ask() })
	}
	bound := w.bound()
	deadline := epoch.Add(bound)
	report := epoch.Add(time.Hour)
	for len(w.violations) == 0 {
		if w.cfg.Progress != nil && !w.sched.now.Before(report) {
			fmt.Fprintf(w.cfg.Progress, "sim: at %s: steps=%d reboots=%d requests=%d\n", report.Sub(epoch), w.steps, w.reboots, w.requests())
			report = report.Add(time.Hour)
		}
		if w.done() || (w.cfg.Reboots > 0 && w.reboots >= w.cfg.Reboots) {
			break
		}
		if w.steps >= w.cfg.MaxSteps {
			w.violate("no end after %d steps", w.steps)
			break
		}
		it := w.sched.next()
		if it == nil {
			count, names := w.waiting()
			w.violate("nothing left to do with %d nodes still asked: %s", count, names)
			break
		}
		if w.sched.now.After(deadline) {
			count, names := w.waiting()
			w.violate("liveness: %d nodes still wait after %s (bound): %s", count, bound, names)
			break
		}
		w.steps++
		it.fire()
	}
	took := w.sched.now.Sub(epoch)
	if len(w.violations) == 0 {
		w.checkHistory()
	}
	w.shutdown()
	return Result{
		Seed: w.cfg.Seed, Nodes: len(w.nodes), Steps: w.steps, Faults: w.faults, Reboots: w.reboots,
		Violations: w.violations, Took: took, Bound: bound, HandoffRequestsMedian: median(w.handoffs),
		Requests: w.requests(), RollRequests: w.requests() - w.askedAt, PassedLive: w.passedLive,
		JoinRequests: w.joinRequests, LargestRecord: w.largest,
		PythonNodes: w.pyNodes, PythonReboots: w.pyReboots, PythonFindings: w.pyFindings,
	}
}

// bound is how long a roll may take: the faults' time, then each group's nodes the fewest
// places of its limits' forms at a time (one, for a limit of no fixed number), each a reboot, a place's hand-off
// and its answer, and the daemons' tick twice over for what only a tick sees.
func (w *World) bound() time.Duration {
	if w.cfg.Budget > 0 {
		return w.cfg.Budget
	}
	perGroup := (w.cfg.Nodes + w.cfg.Groups - 1) / w.cfg.Groups
	places := math.MaxInt
	for _, form := range w.cfg.Limits() {
		n := 1
		if l, err := lock.ParseLimit(form); err == nil && l.N > 0 {
			n = l.N
		}
		places = min(places, n)
	}
	rounds := (perGroup + places - 1) / places
	each := w.cfg.RebootTime*3/2 + 2*lock.AnswerWithin + w.cfg.Cooldown + w.cfg.StayGreen + time.Minute
	return w.cfg.FaultTime + 10*time.Minute + time.Duration(rounds)*each + 2*w.cfg.Interval + w.pyBound()
}

// done: every node asked rebooted since, none is down, every daemon is idle, and no lock holds
// a place.
func (w *World) done() bool {
	if w.asks < w.cfg.Waves || (w.cfg.Faults > 0 && w.sched.now.Before(epoch.Add(w.cfg.FaultTime))) {
		return false
	}
	// Checked after every step: a machine leaves w.asked as it boots (see boot), so the
	// machines are walked only once none is left.
	if len(w.asked) > 0 {
		return false
	}
	for _, machines := range [][]*node{w.nodes, w.hosts} {
		for _, n := range machines {
			if n.down || n.finishing || (n.proc != nil && n.proc.idle == nil) || (n.py != nil && n.py.run != nil) {
				// Down, or its daemon is in the middle of a step.
				return false
			}
		}
	}
	for g := range w.cfg.Groups {
		if len(w.lockOf(fmt.Sprintf("g%d", g+1)).Holders) > 0 {
			return false
		}
	}
	return true
}

// waiting counts and names the nodes asked that have not rebooted since (done forgets them
// only once every machine is idle).
func (w *World) waiting() (int, string) {
	var names []string
	for _, n := range append(slices.Clone(w.nodes), w.hosts...) {
		if at, ok := w.asked[n.name]; ok && !n.rebootedAfter(at) {
			names = append(names, n.name)
		}
	}
	count := len(names)
	if count > 10 {
		names = append(names[:10], "…")
	}
	return count, strings.Join(names, ",")
}

// shutdown kills every daemon still running, so that no goroutine outlives the run.
func (w *World) shutdown() {
	for _, n := range append(slices.Clone(w.nodes), w.hosts...) {
		if n.proc != nil {
			w.kill(n.proc)
		}
		if n.py != nil {
			w.pyKill(n)
		}
	}
}

func median(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ask is an operator asking every node to reboot.
func (w *World) ask() {
	if w.asks == 0 {
		w.askedAt = w.requests()
		w.joining = map[string]bool{}
		for _, n := range w.nodes {
			w.joining[n.name] = true
		}
	}
	w.asks++
	w.log("op", "an operator asks every node to reboot (wave %d)", w.asks)
	for _, n := range w.nodes {
		w.asked[n.name] = w.sched.now
		w.model.Put(w.askKey(n), "sim: kernel update")
	}
	for _, h := range w.hosts {
		if !w.cfg.HostIDsOfNodes {
			// (A host named as a node is refused, and never reboots: see hostids.go.)
			w.asked[h.name] = w.sched.now
		}
		h.wants = true
	}
}
