package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
)

// The queue in the fault run: nobody overtakes a live node's turn, and an eligible node gets its
// place within the documented bound.
//
// A node is live, from a moment on, when from then on its daemon runs (started, its first
// evaluation done), its machine is up, its agent is in the cluster, and neither its agent nor
// the server's was restarted (settleAfter before that moment). A live node answers in the queue
// at once when a place opens for it (README "A fair queue"): it takes the place, says it waits
// or works towards it, or marks itself blocked by its own gates.
//
// A node is eligible when it waits in its group's queue, ready (not blocked), asked to reboot and
// holding no place anywhere; it is live; nothing of its own holds it (no stop flag, not disabled,
// none of its services failing or failed by the run, every rule of its services holding with
// every holder anywhere, every instance the run failed and every node away or down counted as
// failing); a place is free for it (fewer holders than a numeric limit; under auto, no host
// holds a place, since a host runs no rule and reboots alone); and it is first of those that may
// go (no live node and no FleetLock host waits ready before it in the queue). Its cooldown and
// stay-green are its own waits on the way to the place: the bound counts them.
//
// The bound, from the moment the run first saw the node eligible: react (it hears of the place
// at once from its turn key, else at its tick, 3 s here, or a look every 5 s in its first minute
// after a crash: 5 s), then its cooldown (the group's last reboot is judged from when it first
// read it, at the latest now), its stay-green, and evaluate for the run that takes the place.
// With dead nodes ready before it (their daemons gone: they cannot answer), the place goes on
// when a pass marks them (lock.AnswerWithin each, by the process that woke them, if it still
// runs) or, at the latest, once their turn is over for this node: lock.QueueGrace from when it
// saw their turn begin, which it sees within react of the run seeing it (the run's time is
// taken, so the bound is never short). A claim of room by a node whose daemon is gone holds a
// node up for the claim's life and the claims' skew (lock.ClaimSkew) after it died; one by a
// live node, for its look (react).
const (
	// settleAfter: after an agent (or the server) comes back, its clients' reads fail until the
	// server has a leader again (a single server elects itself within 2 s of its start), and a
	// daemon whose queries failed looks again at its next tick (3 s; 5 s in its first minute
	// after a crash) or when its backoff ends; 15 s holds the election, one such look and the
	// look's run on a busy 2-core machine twice over.
	settleAfter = 15 * time.Second
	// react: see above.
	react = 5 * time.Second
	// evaluate is one run of the pipeline up to the place written: the view, the health of the
	// node's services (up to seven for a controller: one consistent read each), the claims and
	// the transaction, each a few milliseconds on an idle machine; 2 s holds a daemon built
	// with the race detector waiting for a core on 2 cores shared by ~25 busy processes.
	evaluate = 2 * time.Second
	// claimLife is how long a daemon's claim of room lasts unless judged again: two ticks.
	claimLife = 2 * 3 * time.Second
)

// liveSince is the moment from which n has been live (zero: it is not live now).
func (r *faultRun) liveSince(n *simNode) time.Time {
	if !n.live || n.down || n.left {
		return time.Time{}
	}
	since := n.readyAt
	for _, t := range []time.Time{n.backAt, n.agentAt, r.serverAt} {
		if !t.IsZero() && t.Add(settleAfter).After(since) {
			since = t.Add(settleAfter)
		}
	}
	return since
}

// checkTurns: nobody overtakes a live node's turn. A node marked as having missed its turn (by a
// node that took a place judging its turn over, or by a pass over the nodes woken that did not
// answer within lock.AnswerWithin) must not have been live since AnswerWithin before the read
// that last saw it unmarked: a live node answers at once. A FleetLock host that waits for its
// place (it asks every tick) is never marked either: the server answers in its stead.
func (r *faultRun) checkTurns(when string, prev, s stateView) {
	t := r.t
	t.Helper()
	for group, q := range s.Queues {
		for _, e := range q.Entries {
			if e.Blocked != lock.MissedTurn {
				continue
			}
			if i, in := prev.Queues[group].Place(e.Node); !in || prev.Queues[group].Entries[i].Blocked == lock.MissedTurn {
				continue
			}
			r.cov.missed++
			if h := r.host(e.Node); h != nil {
				if h.state == "asking" && r.serverAt.Add(settleAfter).Before(prev.from) {
					t.Fatalf("%s: FleetLock host %s, asking every %s for a place in group %s, was marked as having missed its turn (queue %+v, lock %+v)", when, h.id, h.tick, group, fmtQueue(q), s.Locks[group].Holders)
				}
				continue
			}
			n := r.nodeNamed(e.Node)
			if n == nil {
				continue
			}
			if live := r.liveSince(n); !live.IsZero() && !live.After(prev.from.Add(-lock.AnswerWithin)) {
				t.Fatalf("%s: %s was marked as having missed its turn in group %s while live since %s (at the latest %s before the read at %s that saw it ready; its daemon answers at once): queue before %s, after %s; lock %+v",
					when, n.Name, group, live.Format(time.StampMilli), lock.AnswerWithin, prev.from.Format(time.StampMilli), fmtQueue(prev.Queues[group]), fmtQueue(q), s.Locks[group].Holders)
			}
		}
	}
}

// eligibility says why n is not eligible ("" when it is), and the bound of its wait from the
// moment it is.
func (r *faultRun) eligibility(n *simNode, s stateView) (string, time.Duration) {
	q := s.Queues[n.Group]
	i, in := q.Place(n.Name)
	_, holds := s.Fleet.Holders[n.Name]
	switch {
	case !in || q.Entries[i].Blocked != "":
		return "not ready in the queue", 0
	case !s.Requested[n.Name] || holds:
		return "not asked, or holds a place", 0
	case r.liveSince(n).IsZero():
		return "not live", 0
	case s.Stop || s.GroupStops[n.Group] != "" || s.Disabled[n.Name]:
		return "stopped or disabled", 0
	}
	if why := r.rulesHold(n, s); why != "" {
		return why, 0
	}
	rec := s.Locks[n.Group]
	limit := s.Limits[n.Group]
	if limit.Auto {
		if slices.ContainsFunc(rec.Holders, func(h lock.Holder) bool { return r.isHost(h) }) {
			return "a host holds a place under auto", 0
		}
	} else if limit.PerZone > 0 || len(rec.Holders) >= limit.Places(0, true) {
		return "no place free", 0
	}
	bound := react + n.cooldown + n.stayGreen + evaluate
	for _, e := range q.Entries[:i] {
		if e.Blocked != "" {
			continue
		}
		m := r.nodeNamed(e.Node)
		if m == nil {
			return "a FleetLock host waits before it", 0
		}
		if !r.liveSince(m).IsZero() {
			return "a live node waits before it", 0
		}
		bound = max(bound, react+lock.QueueGrace+react+n.cooldown+n.stayGreen+evaluate)
	}
	for _, cl := range s.Claims.Claims {
		m := r.nodeNamed(cl.Node)
		switch {
		case m == nil || m == n:
		case r.liveSince(m).IsZero():
			return "a claim of a node whose daemon is gone", 0
		default:
			bound += react
		}
	}
	return "", bound
}

// rulesHold says which rule of n's services would not hold ("" when every one holds), with every
// other holder anywhere, every instance the run failed, every node away or down and every node
// whose agent was restarted within settleAfter counted as failing; n's own instances must pass.
func (r *faultRun) rulesHold(n *simNode, s stateView) string {
	for _, svc := range n.Services {
		if n.failing[svc.Name] {
			return "its own " + svc.Name + " fails"
		}
		rules, err := health.ParseRules(svc.Tags)
		if err != nil {
			r.t.Fatal(err)
		}
		if rules.LocalOnly {
			continue
		}
		members, failing := 0, 0
		for _, m := range r.fleet.Running(svc.Name) {
			m := r.node(m.Name)
			if m.left && m.forgotten {
				continue
			}
			members++
			_, holds := s.Fleet.Holders[m.Name]
			// An agent restarted lately may still show its checks critical (its serfHealth).
			restarted := !m.agentAt.IsZero() && m.agentAt.Add(settleAfter).After(s.from)
			if m != n && (holds || m.failing[svc.Name] || m.down || m.left || m.remembered != nil || restarted) {
				failing++
			}
		}
		passing := members - failing
		if (rules.MinPassing >= 0 && passing < rules.MinPassing) || (rules.MaxFailing >= 0 && failing > rules.MaxFailing) || (!rules.Quorum() && failing > 0) {
			return fmt.Sprintf("%s: %d of %d failing", svc.Name, failing, members)
		}
	}
	return ""
}

// checkProgress: an eligible node gets its place within its bound (see eligibility). The wait
// counts from the first read that saw it eligible, and ends with any read that does not.
func (r *faultRun) checkProgress(when string, s stateView) {
	t := r.t
	t.Helper()
	for _, n := range r.nodes {
		why, bound := r.eligibility(n, s)
		if why != "" {
			if !n.eligibleFrom.IsZero() {
				r.cov.longestWait = max(r.cov.longestWait, s.from.Sub(n.eligibleFrom))
			}
			n.eligibleFrom, n.eligibleSaw = time.Time{}, ""
			continue
		}
		if n.eligibleFrom.IsZero() {
			n.eligibleFrom, n.eligibleSaw = s.at, r.sawQueue(n, s)
			r.cov.eligible++
			continue
		}
		if waited := s.from.Sub(n.eligibleFrom); waited > bound {
			t.Fatalf("%s: queue progress: %s waited %s for its place in group %s, eligible since %s, beyond its bound of %s (react %s, cooldown %s, stay-green %s, evaluate %s, and a turn of %s for each dead node before it); the run saw then: %s; now: %s",
				when, n.Name, waited.Round(time.Millisecond), n.Group, n.eligibleFrom.Format(time.StampMilli), bound, react, n.cooldown, n.stayGreen, evaluate, lock.QueueGrace, n.eligibleSaw, r.sawQueue(n, s))
		}
	}
}

// sawQueue is what the run saw of n's group: its queue, lock, limit and the claims.
func (r *faultRun) sawQueue(n *simNode, s stateView) string {
	return fmt.Sprintf("queue %s, holders %+v, limit %s, claims %+v, %s live since %s",
		fmtQueue(s.Queues[n.Group]), s.Locks[n.Group].Holders, s.Limits[n.Group], s.Claims.Claims, n.Name, r.liveSince(n).Format(time.StampMilli))
}

// isHost says whether h is a FleetLock host's place.
func (r *faultRun) isHost(h lock.Holder) bool { return h.FleetLock() || r.host(h.Node) != nil }

func fmtQueue(q lock.Queue) string {
	var parts []string
	for _, e := range q.Entries {
		p := e.Node + "@" + e.Since.Format("15:04:05.000")
		if e.Blocked != "" {
			p += "(" + e.Blocked + ")"
		}
		parts = append(parts, p)
	}
	return "[" + strings.Join(parts, " ") + "] freed " + q.Freed.Format("15:04:05.000")
}
