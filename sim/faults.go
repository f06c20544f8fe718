package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// A fault is one of the plan's: what befalls a node, or what an operator does, and its undoing
// later.
type fault struct {
	num  int
	at   time.Duration
	kind string
	node int
	// arg picks among the kind's variants (a status, a limit, a jump).
	arg int
	// lasts is how long until it is undone (where it is).
	lasts time.Duration
}

var faultKinds = []string{"kill", "pause", "agent-restart", "leave", "refuse", "slow", "clock-jump", "stop", "group-stop", "limit", "disable", "unlock"}

// plan draws the run's faults from the seed, before anything runs: shrinking drops some and
// keeps the others as they were.
func (w *World) plan() []fault {
	out := make([]fault, w.cfg.Faults)
	for i := range out {
		out[i] = fault{
			num:   i + 1,
			at:    time.Duration(w.sched.rng.Int64N(int64(w.cfg.FaultTime))),
			kind:  faultKinds[w.sched.rng.IntN(len(faultKinds))],
			node:  w.sched.rng.IntN(len(w.nodes)),
			arg:   w.sched.rng.IntN(4),
			lasts: 5*time.Second + time.Duration(w.sched.rng.Int64N(int64(5*time.Minute))),
		}
	}
	return out
}

// schedule puts the plan's faults, but those dropped, on the schedule.
func (w *World) schedule(plan []fault) {
	for _, f := range plan {
		if w.cfg.Drop[f.num] {
			continue
		}
		n := w.nodes[f.node]
		w.sched.add(epoch.Add(f.at), n.name, "fault", func() { w.apply(f, n) })
	}
}

// apply does f to n, and schedules its undoing.
func (w *World) apply(f fault, n *node) {
	w.faults++
	// An operator's command is no trouble of the node the plan put it on: every node reads it.
	operator := f.kind == "unlock" || f.kind == "stop" || f.kind == "group-stop" || f.kind == "limit"
	if until := w.sched.now.Add(f.lasts); !operator && until.After(n.trouble) {
		n.trouble = until
	}
	later := func(what string, undo func()) {
		w.sched.add(w.sched.now.Add(f.lasts), n.name, "undo", func() {
			w.log(n.name, "fault #%d ends: %s", f.num, what)
			undo()
		})
	}
	say := func(format string, args ...any) {
		w.log(n.name, "FAULT #%d %s", f.num, fmt.Sprintf(format, args...))
	}
	if n.py != nil && w.pyFault(f, n, say) {
		return
	}
	switch f.kind {
	case "kill":
		if n.proc == nil {
			say("kill: no daemon running")
			return
		}
		say("kill -9 of the daemon; restarted in %s", f.lasts)
		w.kill(n.proc)
		later("daemon restarts", func() {
			if n.proc == nil && !n.down {
				w.start(n)
			}
		})
	case "pause":
		say("daemon paused for %s", f.lasts)
		n.pausedUntil = w.sched.now.Add(f.lasts)
	case "slow":
		say("Consul slow for this node (up to 10s a request) for %s", f.lasts)
		n.slowUntil = w.sched.now.Add(f.lasts)
	case "agent-restart":
		say("the agent restarts: down for %s", f.lasts)
		n.agentDownUntil = w.sched.now.Add(f.lasts)
		w.model.SetCheck(n.name, "serfHealth", "", "critical")
		later("agent back", func() {
			if !n.down {
				w.model.SetCheck(n.name, "serfHealth", "", "passing")
			}
		})
	case "leave":
		say("the agent leaves the cluster cleanly; it returns in %s", f.lasts)
		n.agentDownUntil = w.sched.now.Add(f.lasts)
		w.model.Leave(n.name)
		n.left = true
		later("agent rejoins", func() {
			n.left = false
			w.register(n)
			if n.down {
				w.model.SetCheck(n.name, "serfHealth", "", "critical")
			}
		})
	case "refuse":
		status := []int{403, 413, 429, 500}[f.arg]
		say("the node's next %d writes are refused with %d", f.arg+1, status)
		n.refuse, n.refuseStatus = f.arg+1, status
	case "clock-jump":
		jump := []time.Duration{time.Hour, -time.Hour, 10 * time.Minute, -10 * time.Minute}[f.arg]
		if len(w.hosts) > 0 && f.node%4 == 0 {
			// The FleetLock server's machine, as often as a node's.
			say("the FleetLock server's clock jumps %s", jump)
			w.jumpServer(jump)
			return
		}
		say("the machine's clock jumps %s", jump)
		n.offset += jump
	default:
		w.operator(f, n, say, later)
	}
}

// operator does an operator's fault: a stop, a group's stop, a limit changed, a node disabled;
// each undone later, as an operator resumes.
func (w *World) operator(f fault, n *node, say func(string, ...any), later func(string, func())) {
	switch f.kind {
	case "stop":
		say("an operator stops the fleet for %s", f.lasts)
		w.model.Put(w.keys.Stop(), "sim: an operator stopped the fleet")
		later("the fleet resumes", func() { w.model.Delete(w.keys.Stop()) })
	case "group-stop":
		say("an operator stops %s for %s", n.group, f.lasts)
		w.model.Put(w.keys.GroupStop(n.group), "sim: an operator stopped the group")
		if w.cfg.PythonEvery > 0 {
			// rebootmgr stop --group sets the Python rebootmgr's too, and resume removes both.
			w.model.Put(w.keys.PythonGroupStop(n.group), "sim: an operator stopped the group")
		}
		later(n.group+" resumes", func() {
			w.model.Delete(w.keys.GroupStop(n.group))
			if w.cfg.PythonEvery > 0 {
				w.model.Delete(w.keys.PythonGroupStop(n.group))
			}
		})
	case "limit":
		limit := []string{"1", "2", "3", "auto"}[f.arg]
		// Every other operator writes the key by hand, as consul kv put does.
		w.chk.limits++
		set, how := w.setLimit, "with rebootmgr limit"
		if w.chk.limits%2 == 0 {
			set, how = w.putLimit, "by hand"
		}
		say("an operator sets %s's limit to %q for %s, %s", n.group, limit, f.lasts, how)
		set(n.group, limit)
		back := w.cfg.LimitOf(n.group)
		later(n.group+"'s limit back to "+back, func() { set(n.group, back) })
	case "unlock":
		w.unlock(n, say)
	case "disable":
		say("an operator disables the node for %s", f.lasts)
		w.model.Put(w.keys.Disabled(n.name), "sim: disabled by an operator")
		w.pyEnable(n, false)
		later("enabled again", func() {
			w.model.Delete(w.keys.Disabled(n.name))
			w.pyEnable(n, true)
		})
	}
}

// unlock is an operator giving back the place of a holder of n's group whose machine is up (its
// daemon looks stuck: preparing, or finishing), as rebootmgr unlock --force does: the holder's
// daemon must not go on to reboot without it, nor the fleet lose count of a reboot. A machine
// that is down is never unlocked: that is a reboot under way, which only an operator who knows
// it will not come back gives up.
func (w *World) unlock(n *node, say func(string, ...any)) {
	rec := w.lockOf(n.group)
	var target string
	var phase lock.Phase
	for _, h := range rec.Holders {
		if m := w.machine(h.Node); m != nil && !m.down {
			target, phase = h.Node, h.Phase
			break
		}
	}
	if target == "" {
		say("an operator would unlock a holder of %s whose machine is up: none", n.group)
		return
	}
	say("an operator unlocks %s (%s) in %s", target, phase, n.group)
	st := &store.Consul{Client: w.model.Client("operator", nil), Keys: w.keys, Group: n.group, Now: clock{w: w, node: &node{}}.Now}
	w.chk.operator = true
	defer func() { w.chk.operator = false }()
	removed, err := st.Unlock(context.Background(), target, func(h lock.Holder) error {
		if m := w.machine(h.Node); m == nil || m.down {
			return fmt.Errorf("%s is down now", h.Node)
		}
		return nil
	})
	if err != nil {
		w.log("op", "unlock refused: %v", err)
		return
	}
	// As the command records it.
	if _, err := st.AppendHistory(context.Background(), history.Entry{Node: target, Start: removed.Since, End: w.sched.now.UTC(), Outcome: history.Unlocked, Detail: "sim: an operator"}); err != nil {
		w.log("op", "unlock not recorded: %v", err)
	}
}

// machine is the node or FleetLock host of that name (nil: none).
func (w *World) machine(name string) *node {
	if n, ok := w.byName[name]; ok {
		return n
	}
	for _, h := range w.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// jumpServer jumps the FleetLock server's clock by d.
func (w *World) jumpServer(d time.Duration) {
	w.server()
	w.fleetlockNode.offset += d
}

// latency is when a request of n's is answered: at once but for a small delay, later while
// its daemon is paused or Consul slow for it.
func (w *World) latency(n *node, _ *consulmodel.Call) time.Duration {
	d := time.Duration(w.sched.rng.Int64N(int64(5 * time.Millisecond)))
	if n.pausedUntil.After(w.sched.now) {
		d += n.pausedUntil.Sub(w.sched.now)
	}
	if n.slowUntil.After(w.sched.now) {
		d += time.Duration(w.sched.rng.Int64N(int64(10 * time.Second)))
	}
	return d
}

// refusal is what the fault plan answers in place of c, if anything: an agent down or gone
// answers nothing; a refused write, its status.
func (w *World) refusal(n *node, c *consulmodel.Call) *consulmodel.Refusal {
	if n.agentDownUntil.After(w.sched.now) {
		return &consulmodel.Refusal{Status: 500, Body: "rpc error: no known Consul servers"}
	}
	if c.Write && n.refuse > 0 {
		n.refuse--
		// The fault keeps the daemon from answering at the write it refuses, which may come long
		// after the fault was planned: its trouble is now.
		if w.sched.now.After(n.trouble) {
			n.trouble = w.sched.now
		}
		body := map[int]string{403: "Permission denied", 413: "Request body too large", 429: "rate limit exceeded", 500: "internal error"}[n.refuseStatus]
		return &consulmodel.Refusal{Status: n.refuseStatus, Body: body}
	}
	return nil
}

// logCall writes a request into the trace.
func (w *World) logCall(n *node, c *consulmodel.Call, r *consulmodel.Refusal) {
	what := c.Method + " " + c.Path
	if n.py != nil && len(c.Query) > 0 {
		// A Python node's lock is taken, given back and written by the query alone.
		what += "?" + c.Query.Encode()
	}
	if r != nil {
		what += fmt.Sprintf(" -> REFUSED %d", r.Status)
	}
	w.log(n.name, "%s", what)
	w.countRequest(n)
}
