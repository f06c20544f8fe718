package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// Clocks in the fault run. Every daemon runs with a clock of its own (--clock-offset, from a
// few seconds to an hour, ahead or behind), and its clock jumps when the run restarts it with
// another offset (a clock jump fault, by kill -9 or by SIGTERM). Every time a daemon writes in
// the records (a place's since, a reboot's start, its deadline, a turn, the end of a reboot)
// is of its clock; the FleetLock server's are of the machine's. The run knows each daemon's
// offset and lifetime, so it reads every written time back on its own clock (realTimes):
// nothing it checks takes a written time as it is.

// life is one daemon of a node: its clock's offset, and when it ran (to is zero while it runs).
type life struct {
	offset   time.Duration
	from, to time.Time
}

// drawOffset is a clock offset: from 2 s to an hour, evenly on a log scale, ahead or behind.
func (r *faultRun) drawOffset() time.Duration {
	d := time.Duration(float64(2*time.Second) * math.Pow(1800, r.rng.Float64())).Round(time.Millisecond)
	if r.rng.IntN(2) == 0 {
		return -d
	}
	return d
}

// drawSettings gives n the settings of its own the run draws once: its clock, its cooldown and
// its stay-green (a few seconds each).
func (r *faultRun) drawSettings(n *simNode) {
	n.offset = r.drawOffset()
	n.cooldown = r.between(time.Second, 5*time.Second).Round(100 * time.Millisecond)
	n.stayGreen = r.between(time.Second, 4*time.Second).Round(100 * time.Millisecond)
}

// daemonArgs are the flags of n's daemon that are its own.
func (n *simNode) daemonArgs() []string {
	return []string{"--clock-offset", n.offset.String(), "--cooldown", n.cooldown.String(), "--stay-green", n.stayGreen.String()}
}

// kill9 kills n's daemon with SIGKILL; term stops it with SIGTERM.
func (r *faultRun) kill9(n *simNode) { n.Daemon.Kill9(); r.ended(n) }
func (r *faultRun) term(n *simNode)  { n.Daemon.Stop(); r.ended(n) }

func (r *faultRun) ended(n *simNode) {
	n.lives[len(n.lives)-1].to = time.Now()
	n.live = false
	n.diedAt = time.Now()
}

// jump restarts n's daemon with another clock offset: killed (kill -9) or stopped (SIGTERM).
func (r *faultRun) jump(n *simNode) {
	from := n.offset
	n.offset = r.drawOffset()
	how := "kill -9"
	if r.rng.IntN(2) == 0 {
		how = "SIGTERM"
		r.term(n)
	} else {
		r.kill9(n)
	}
	r.t.Logf("  clock %s -> %s (%s)", from, n.offset, how)
	r.cov.jumps++
	r.start(n)
}

// realTimes is when, on the run's clock, the holder h wrote a time it wrote as written: at the
// earliest lo, at the latest hi. A FleetLock host's times are the server's, of the machine's
// clock; a node's were written by one of its daemons, on that daemon's clock, while it ran.
// When more than one daemon may have written it (a jump meanwhile), lo and hi span them.
func (r *faultRun) realTimes(h lock.Holder, written time.Time) (lo, hi time.Time) {
	r.t.Helper()
	if r.isHost(h) {
		return written, written
	}
	n := r.node(h.Node)
	for _, l := range n.lives {
		at := written.Add(-l.offset)
		if at.Before(l.from) || (!l.to.IsZero() && at.After(l.to)) {
			continue
		}
		if lo.IsZero() || at.Before(lo) {
			lo = at
		}
		if at.After(hi) {
			hi = at
		}
	}
	if lo.IsZero() {
		r.t.Fatalf("%s wrote %s, a time none of its daemons could have written: %+v", h.Node, written.Format(time.RFC3339Nano), n.lives)
	}
	return lo, hi
}

// checkStops: a group's stop flag is set only by a daemon (the run sets the fleet's), and only
// for a holder past its deadline (the run sets no circuit breaker). The holder's reboot started,
// on the run's clock, when its daemon wrote it (realTimes): a stop before the deadline's span
// (as the holder wrote it) has passed since then on the run's clock is a deadline that cannot
// be true.
func (r *faultRun) checkStops(when string, s stateView) {
	t := r.t
	t.Helper()
	for group, reason := range s.GroupStops {
		holder, _, ok := strings.Cut(reason, " did not finish its reboot by its deadline")
		if !ok {
			t.Fatalf("%s: group %s stopped, not for a deadline: %s", when, group, reason)
		}
		h, held := s.Locks[group].Holder(holder)
		if !held {
			t.Fatalf("%s: group %s stopped for %s's deadline, which holds no place: %s (lock %+v)", when, group, holder, reason, s.Locks[group].Holders)
		}
		start := h.RebootStarted
		if start.IsZero() {
			start = h.Since
		}
		lo, _ := r.realTimes(h, start)
		span := h.Deadline.Sub(start)
		if ran := s.at.Sub(lo); ran < span {
			t.Fatalf("%s: group %s stopped on a deadline that cannot be true: %s's reboot started at %s on the run's clock (written %s, by a clock %s), %s ago, within its deadline of %s: %s",
				when, group, holder, lo.Format(time.StampMilli), start.Format(time.RFC3339Nano), r.offsetOf(h), ran.Round(time.Millisecond), span, reason)
		}
		t.Fatalf("%s: group %s stopped: %s took longer than its deadline of %s (the run makes no reboot so long): %s", when, group, holder, span, reason)
	}
}

// offsetOf names the clock h's times were written by.
func (r *faultRun) offsetOf(h lock.Holder) string {
	if n := r.nodeNamed(h.Node); n != nil && !h.FleetLock() {
		var offsets []string
		for _, l := range n.lives {
			offsets = append(offsets, l.offset.String())
		}
		return "of offset " + strings.Join(offsets, " or ")
	}
	return "of the machine (the FleetLock server's)"
}

// nodeNamed is the node named name, nil when none is.
func (r *faultRun) nodeNamed(name string) *simNode {
	for _, n := range r.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// clocks logs the nodes' clocks and settings.
func (r *faultRun) clocks() string {
	var b strings.Builder
	for _, n := range r.nodes {
		fmt.Fprintf(&b, " %s(clock %s, cooldown %s, stay-green %s)", n.Name, n.offset, n.cooldown, n.stayGreen)
	}
	return b.String()
}
