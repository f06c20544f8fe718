package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// The queue's order beyond the turns a node lets pass (see World.queueWritten): a live node is
// overtaken only for a gate of its own, and a place a live node's daemon gives back goes on
// past dead nodes at the front of the queue within a few passes. Like a node passed over while
// it runs, each is counted (passed_live), and is a violation with Config.StrictTurns.

// ownGates are what a node of the simulation may be blocked by in its group's queue that is its
// own: its disabled mark, its health (its services, its group's reboots in flight), a turn it
// let pass. The simulation sets no maintenance window and no min reboot interval, so a node
// blocked "not_now" is blocked by its group's cooldown: a wait of the group's, no gate of its own.
var ownGates = []string{"disabled", "health", lock.ForRoom, lock.MissedTurn}

// live says whether n's daemon runs, on a machine that is up, and no fault has troubled it for
// twice the time a woken node has to answer.
func (w *World) live(n *node) bool {
	p := n.proc
	return p != nil && !p.dead && !n.down && !n.left && w.sched.now.Sub(n.trouble) > 2*lock.AnswerWithin
}

// queueOrderBroken counts a node of group passed over, or held up, while its daemon ran (see
// queueWritten), and fails the run with Config.StrictTurns.
func (w *World) queueOrderBroken(node, group, what string) {
	w.passedLive++
	if w.cfg.StrictTurns {
		w.violate("%s %s in %s's queue", node, what, group)
	} else {
		w.log(node, "FINDING: %s in %s's queue", what, group)
	}
}

// checkOvertaken checks group's lock just written (rec) against its holders and queue before
// the write: a node that took a place overtook none of the nodes before it in the queue that
// were live and blocked by no gate of their own. It notes which nodes the write released (see
// checkQueues).
func (w *World) checkOvertaken(group string, rec lock.Record) {
	before := w.chk.holders[group]
	holders := make([]string, len(rec.Holders))
	for i, h := range rec.Holders {
		holders[i] = h.Node
	}
	w.chk.holders[group] = holders
	for _, n := range before {
		if !slices.Contains(holders, n) {
			w.chk.released[group] = append(w.chk.released[group], n)
		}
	}
	q := w.queues[group]
	if q == nil {
		return
	}
	for _, taker := range holders {
		if slices.Contains(before, taker) {
			continue
		}
		// The nodes before taker in the queue (all of them, when it took a place from outside).
		q.entries(func(e lock.QueueEntry) bool {
			if e.Node == taker {
				return false
			}
			n := w.byName[e.Node]
			if e.Blocked == "" || slices.Contains(ownGates, e.Blocked) || n == nil || !w.live(n) || slices.Contains(holders, e.Node) {
				return true
			}
			w.queueOrderBroken(e.Node, group, fmt.Sprintf("overtaken by %s while blocked by %q, no gate of its own, with its daemon running and untroubled for %s", taker, e.Blocked, w.sched.now.Sub(n.trouble).Round(time.Second)))
			return true
		})
	}
}

// checkQueues follows the hand-offs of every group after a write (see checkHandOffs).
func (w *World) checkQueues() {
	for g := range w.cfg.Groups {
		group := fmt.Sprintf("g%d", g+1)
		w.checkHandOffs(group, w.chk.released[group])
	}
	clear(w.chk.released)
}

// stall is a place given back by a node's daemon (releaser, its run gen) that waits for dead
// nodes at the front of its group's queue (dead) while a live node (node, its run gen) waits
// behind them, since since.
type stall struct {
	node, releaser   string
	gen, releaserGen int
	since            time.Time
	dead             []string
	reported         bool
}

// handOffBound is how long a place a live daemon gave back may wait for dead nodes at the
// front of its group's queue: a pass every lock.AnswerWithin, three reaching further than the
// fleet's groups hold, then the cooldown and stay-green of the node that takes it, and a run.
func (w *World) handOffBound() time.Duration {
	return 3*lock.AnswerWithin + w.cfg.Cooldown + w.cfg.StayGreen + 5*time.Second
}

// checkHandOffs follows, after each write, the places given back that wait for dead nodes at
// the front of their group's queue: the daemon that gave one back passes over the nodes that do
// not answer, further into the queue with each pass, so the first live node behind them hears
// of it within a few passes however many they are (docs/design.md, "Answers and passes"). A
// place an operator gave back or opened (unlock, limit) has no daemon to pass: its dead nodes
// hold it for their turn (lock.QueueGrace), as do those of a releaser that died or was troubled,
// and nodes whose daemons went after the place was given back (not among those it waited for
// then: the releaser's passes follow the nodes it woke).
func (w *World) checkHandOffs(group string, released []string) {
	st, ok := w.chk.stalls[group]
	if ok && !st.reported && w.sched.now.Sub(st.since) > w.handOffBound() && w.stillLive(st) {
		st.reported = true
		w.chk.stalls[group] = st
		w.queueOrderBroken(st.node, group, fmt.Sprintf("held up for %s behind nodes whose daemons were gone (%s) at the front, with a place %s gave back free and its daemon running", w.sched.now.Sub(st.since).Round(time.Second), strings.Join(st.dead, ","), st.releaser))
	}
	l, dead := w.behindDead(group)
	switch {
	case l == nil:
		delete(w.chk.stalls, group)
	case ok && st.node == l.name && st.gen == l.proc.gen && subset(dead, st.dead):
	case len(released) == 1 && !w.chk.operator:
		r := w.byName[released[0]]
		if r == nil || r.proc == nil || r.host {
			delete(w.chk.stalls, group)
			return
		}
		w.chk.stalls[group] = stall{node: l.name, gen: l.proc.gen, releaser: r.name, releaserGen: r.proc.gen, since: w.sched.now, dead: dead}
	default:
		delete(w.chk.stalls, group)
	}
}

// stillLive says whether the waiting node and the releaser of st ran untroubled throughout.
func (w *World) stillLive(st stall) bool {
	for _, c := range []struct {
		name string
		gen  int
	}{{st.node, st.gen}, {st.releaser, st.releaserGen}} {
		n := w.byName[c.name]
		if n == nil || n.proc == nil || n.proc.dead || n.proc.gen != c.gen || !n.trouble.Before(st.since) {
			return false
		}
	}
	return true
}

// behindDead is the first live node of group's queue, ready and not disabled, when a place is
// free (by a limit that counts places), no stop flag is set, and nodes whose daemons are gone
// (not live) stand ready before it, which it then names; nil otherwise.
func (w *World) behindDead(group string) (*node, []string) {
	v, _, _ := w.model.Get(w.keys.GroupLimit(group))
	l, err := lock.ParseLimit(v)
	if err != nil || l.Auto {
		return nil, nil
	}
	rec := w.locks[group]
	if lock.Free(rec, l, len(w.byGroup[group])) == 0 || w.stopped(group) {
		return nil, nil
	}
	q := w.queues[group]
	if q == nil {
		return nil, nil
	}
	var (
		dead  []string
		first *node
	)
	q.entries(func(e lock.QueueEntry) bool {
		if _, holds := rec.Holder(e.Node); holds || e.Blocked != "" || rec.ZoneError(e.Node, w.zoneOf(e.Node), l.PerZone) != nil {
			return true
		}
		n := w.byName[e.Node]
		if n == nil || !w.live(n) {
			dead = append(dead, e.Node)
			return true
		}
		if _, _, disabled := w.model.Get(w.keys.Disabled(n.name)); !disabled && len(dead) > 0 {
			first = n
		}
		return false
	})
	if first == nil {
		return nil, nil
	}
	return first, dead
}

// stopped says whether the fleet's stop flag or group's is set.
func (w *World) stopped(group string) bool {
	_, _, fleet := w.model.Get(w.keys.Stop())
	_, _, own := w.model.Get(w.keys.GroupStop(group))
	return fleet || own
}

// zoneOf is the zone of the machine called name ("" for a host, a flood's id, or a node of no
// zone).
func (w *World) zoneOf(name string) string {
	if n := w.byName[name]; n != nil {
		return n.zone
	}
	return ""
}

// subset says whether every name of a is in b.
func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
