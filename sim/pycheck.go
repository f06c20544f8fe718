package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/store"
)

// The promises between Python nodes and the daemons (docs/migration.md, "What each sees of the
// other"). A Python node of a group holds that group's lock, one of no group every group's: from
// its session lock, while it prepares (no daemon takes a place then, and once it holds its
// session lock it reads their markers), and from its marker, written before its reboot, until
// its run after the boot deletes it. So a Python holder and a holder of a lock it holds never
// hold at once: checked when its marker is written and at every write of a lock record it
// holds. A Python node down counts as a failing instance of its services: the daemons' quorum
// checks count it (checkQuorum), and so does its own going down, where a daemon's reboot beside
// it breaks a rule. What the Python code itself allows, the daemons cannot answer for: two
// Python nodes of different keys at once (one of no group and one of a group do not see each
// other), its reboot under a stop flag set after its last look, or after its session lost its
// lock; those are noted in the trace, not violations.

// pyFinding notes in the trace what the Python code itself did that the daemons cannot answer
// for, and counts it.
func (w *World) pyFinding(node, format string, args ...any) {
	w.pyFindings++
	w.log(node, "PYTHON FINDING: %s", fmt.Sprintf(format, args...))
}

// holdsGroup says whether a Python node holds group's lock when it holds its own.
func (py *python) holdsGroup(group string) bool { return py.group == "" || py.group == group }

// pyMarked is n's run having written its marker, with session holding lockKey, as it believes.
func (w *World) pyMarked(n *node, lockKey, session string) {
	py := n.py
	py.holds, py.markedAt, py.noted = true, w.sched.now, false
	py.rogue = session == "" || w.pyLockHolder(lockKey) != session
	n.finishing = true
	w.log(n.name, "PYTHON marks its reboot (group %q)", py.group)
	if py.rogue {
		w.pyFinding(n.name, "the Python rebootmgr wrote its marker after its session lost %s: it checks its lock before its last gates and its marker, and a daemon may take a place meanwhile (the Python code's own race)", lockKey)
	}
	for g := range w.cfg.Groups {
		if group := fmt.Sprintf("g%d", g+1); py.holdsGroup(group) {
			w.pyBeside(n, group)
		}
	}
}

// pyLockWritten checks a group's lock record just written against the Python holders of it.
func (w *World) pyLockWritten(group string) {
	for _, n := range w.nodes {
		if n.py != nil && n.py.holds && n.py.holdsGroup(group) {
			w.pyBeside(n, group)
		}
	}
}

// pyBeside checks that nobody holds a place in group's lock while the Python node n holds it.
func (w *World) pyBeside(n *node, group string) {
	rec := w.lockOf(group)
	if len(rec.Holders) == 0 {
		return
	}
	var held []string
	for _, h := range rec.Holders {
		held = append(held, fmt.Sprintf("%s (%s)", h.Node, h.Phase))
	}
	msg := fmt.Sprintf("%s holds a place in %s's lock while the Python rebootmgr's %s holds it (its marker, since %.3fs)",
		strings.Join(held, ", "), group, n.name, n.py.markedAt.Sub(epoch).Seconds())
	if n.py.rogue {
		if !n.py.noted {
			n.py.noted = true
			w.pyFinding(n.name, "%s, after its session lost its lock", msg)
		}
		return
	}
	w.violate("%s", msg)
}

// pyRebootStarts is n's run starting its reboot (shutdown -r +1). Its gates are its own: a stop
// flag or a disable that came after its last look at them is noted.
func (w *World) pyRebootStarts(n *node) {
	w.reboots++
	w.pyReboots++
	w.log(n.name, "REBOOT starts: the Python rebootmgr runs shutdown -r +1 (%d so far)", w.reboots)
	keys := []string{w.keys.Stop()}
	if n.py.group != "" {
		keys = append(keys, w.keys.PythonGroupStop(n.py.group))
	}
	for _, key := range keys {
		if _, _, ok := w.model.Get(key); ok {
			w.pyFinding(n.name, "the Python rebootmgr reboots while %s is set (set after its last look)", key)
		}
	}
	if v, _, ok := w.model.Get(w.keys.PythonConfig(n.name)); ok {
		if _, disabled := store.PythonDisabled([]byte(v)); disabled {
			w.pyFinding(n.name, "the Python rebootmgr reboots its node disabled (it looks at its config before its wait only)")
		}
	}
}

// pyDown is n's machine going down: every rule of its services, as the daemons read them, holds
// with it down, unless only Python nodes broke it (noted).
func (w *World) pyDown(n *node) {
	for _, svc := range n.services {
		var total int
		var down, daemons []string
		for _, o := range w.nodes {
			if !slices.Contains(o.services, svc) {
				continue
			}
			total++
			if o.down && o != n {
				down = append(down, o.name)
				if o.py == nil {
					daemons = append(daemons, o.name)
				}
			}
		}
		var broken string
		switch {
		case svc == "shared" && total-len(down) < w.sharedMin():
			broken = fmt.Sprintf("min_passing=%d", w.sharedMin())
		case svc != "shared" && len(down) > w.cfg.MaxFailing:
			broken = fmt.Sprintf("max_failing=%d", w.cfg.MaxFailing)
		default:
			continue
		}
		msg := fmt.Sprintf("%s: %s broken as the Python rebootmgr's %s goes down (others down: %s)", svc, broken, n.name, strings.Join(down, ","))
		if len(daemons) == 0 {
			w.pyFinding(n.name, "%s: Python nodes alone", msg)
			continue
		}
		w.violate("%s", msg)
	}
}

// pyFinished is n's run after the boot having deleted its marker.
func (w *World) pyFinished(n *node) {
	n.py.holds, n.py.rogue = false, false
	n.finishing = false
	w.log(n.name, "PYTHON finishes its reboot")
}

// pyAskDeleted is n's run after the boot having deleted its request: one written after the
// boot is lost with it (the Python code's own), and so is one it never rebooted for (a run
// killed between its marker and its shutdown leaves a marker the next run takes for a reboot
// done). Neither is held against the fleet's liveness.
func (w *World) pyAskDeleted(n *node) {
	at, ok := w.asked[n.name]
	if !ok || n.rebootedAfter(at) {
		return
	}
	if n.lastBoot.Before(n.py.markedAt) {
		w.pyFinding(n.name, "the Python rebootmgr finished a reboot that never happened (its marker outlived a run that did not reach its shutdown) and deleted the request")
	} else {
		w.pyFinding(n.name, "the Python rebootmgr's run after the boot deleted a request written after the boot: the request is lost")
	}
	delete(w.asked, n.name)
}

// pyStuck is n's run having found its marker with an uptime over two hours: a run killed
// between its marker and its shutdown left it, and every run after exits 103 while the marker
// holds its groups. An operator deletes it, as docs/migration.md says, five minutes later.
func (w *World) pyStuck(n *node) {
	if !n.py.holds || n.py.unstick != nil {
		return
	}
	key := pyPrefix + "reboot_in_progress"
	if n.py.group != "" {
		key = pyPrefix + n.py.group + "_reboot_in_progress"
	}
	w.pyFinding(n.name, "the Python rebootmgr's marker names this node, which did not reboot: every run exits 103 (permanent) and the marker holds its groups until an operator deletes it")
	n.py.unstick = w.sched.add(w.sched.now.Add(5*time.Minute), "op", "unstick", func() {
		n.py.unstick = nil
		if v, _, ok := w.model.Get(key); ok && v == n.name {
			w.log("op", "an operator deletes %s = %s, which holds its groups for a reboot that did not happen", key, v)
			w.model.Delete(key)
			w.pyFinished(n)
		}
	})
}

// uptime is how long n's machine has run since its last boot.
func (w *World) uptime(n *node) time.Duration {
	if n.lastBoot.IsZero() {
		return w.sched.now.Sub(epoch) + pyBootedBefore
	}
	return w.sched.now.Sub(n.lastBoot)
}

// pyBound is what Python nodes add to the liveness bound. Each reboots on its timer's tick and
// finishes at a tick after the boot, with its wait for the checks, its shutdown's minute and a
// wait for them after the boot: about four times a daemon's reboot. A node of a group holds its
// group, one of no group the fleet, each in turn; and a killed run's session holds its lock
// until Consul ends it (twice its TTL).
func (w *World) pyBound() time.Duration {
	byGroup, fleet := map[string]int{}, 0
	for _, n := range w.nodes {
		switch {
		case n.py == nil:
		case n.py.group == "":
			fleet++
		default:
			byGroup[n.py.group]++
		}
	}
	if fleet == 0 && len(byGroup) == 0 {
		return 0
	}
	most := 0
	for _, c := range byGroup {
		most = max(most, c)
	}
	each := 2*pyTick + pyChecksWait + pyRenewEvery + pyShutdownDelay + w.cfg.RebootTime*3/2 + pyHealthyWait + time.Minute
	return time.Duration(most+fleet)*each + 2*pySessionTTL
}

// pyFault does f to a Python node n where it differs from a daemon's (its run killed or paused);
// false for the faults that befall it as any machine. The faults of its agent are left out unless
// Config.PythonAgentFaults: python-consul raises at every error of Consul, and a run that meets
// one after it made its session ends in its finally, whose release fails too while the agent is
// away; then its session renewer, a thread the process waits for, is never told to finish: the
// run hangs, and so does any lock it holds, renewed, until the process is killed.
func (w *World) pyFault(f fault, n *node, say func(string, ...any)) bool {
	r := n.py.run
	switch f.kind {
	case "agent-restart", "leave", "refuse":
		if !w.cfg.PythonAgentFaults {
			say("%s: left out on a node of the Python rebootmgr (see --python-agent-faults)", f.kind)
			return true
		}
	case "kill":
		if r == nil {
			say("kill: no run of the Python rebootmgr in progress")
			return true
		}
		hung := ""
		if r.wedged {
			hung = " (it hung)"
		}
		say("kill -9 of the Python rebootmgr's run%s; its timer runs it again in %s", hung, pyTick)
		w.pyKill(n)
		w.pyArm(n, pyTick)
		return true
	case "pause":
		if r == nil {
			say("pause: no run of the Python rebootmgr in progress")
			return true
		}
		say("the Python rebootmgr's run paused for %s", f.lasts)
		n.pausedUntil = w.sched.now.Add(f.lasts)
		return true
	}
	return false
}

// pyEnable is what rebootmgr disable and enable do to a node's Python config, beside its own key.
func (w *World) pyEnable(n *node, enabled bool) {
	if w.cfg.PythonEvery <= 0 {
		return
	}
	st := &store.Consul{Client: w.model.Client("operator", nil), Keys: w.keys, Now: clock{w: w, node: &node{}}.Now}
	if _, err := st.SetPythonEnabled(context.Background(), n.name, enabled, "sim: disabled by an operator"); err != nil {
		w.log("op", "the Python config of %s not written: %v", n.name, err)
	}
}
