package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// The fleet's promises, checked as the run goes: at every reboot that starts, and at every
// write of a key of rebootmgr's.

// violate notes a broken promise; the run ends after the step.
func (w *World) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.log("!", "VIOLATION: %s", msg)
	w.violations = append(w.violations, msg)
}

// rebootStarts is p's machine's reboot command: the last moment the daemon decides, where
// every gate must hold in the truth of the simulation, not only in what the daemon read.
func (w *World) rebootStarts(p *proc) error {
	n := p.node
	w.reboots++
	w.chk.rebootAt[n.name] = w.sched.now
	w.log(n.name, "REBOOT starts (%d so far)", w.reboots)
	if _, _, ok := w.model.Get(w.keys.Stop()); ok {
		w.violate("%s started its reboot while the fleet's stop flag was set", n.name)
	}
	if _, _, ok := w.model.Get(w.keys.GroupStop(n.group)); ok {
		w.violate("%s started its reboot while its group's stop flag was set", n.name)
	}
	if _, _, ok := w.model.Get(w.keys.Disabled(n.name)); ok && !n.host {
		w.violate("%s started its reboot while it was disabled", n.name)
	}
	rec := w.lockOf(n.group)
	if _, ok := rec.Holder(n.name); !ok {
		w.violate("%s started its reboot without a place in %s's lock (holders: %s)", n.name, n.group, holderNames(rec))
	}
	n.down = true
	var down []*node
	for _, o := range w.groupMachines(n.group) {
		// A Python node holds no place: one down beside n is checked as its holder (pycheck.go).
		if o.down && o.py == nil {
			down = append(down, o)
		}
	}
	if len(down) > len(rec.Holders) {
		w.violate("%d nodes of %s down at once (%s) with %d places held", len(down), n.group, joinNames(down), len(rec.Holders))
	}
	w.checkAlone(n, down)
	w.checkZones(n, down)
	w.checkQuorum(n)
	if w.lastEnd >= 0 {
		w.handoffs = append(w.handoffs, w.requests()-w.lastEnd)
		w.lastEnd = -1
	}
	return nil
}

// checkAlone checks that under a limit of auto a node with no rule over the fleet is down
// alone in its group.
func (w *World) checkAlone(n *node, down []*node) {
	v, _, _ := w.model.Get(w.keys.GroupLimit(n.group))
	if l, err := lock.ParseLimit(v); err != nil || !l.Auto || len(down) < 2 {
		return
	}
	for _, o := range down {
		if ruleLess(o) {
			w.violate("%s, with no rule over the fleet, down beside %s under %s's limit auto", o.name, joinNames(down), n.group)
			return
		}
	}
}

// checkQuorum checks every rule of n's services as the health gate reads them, at the moment n
// goes down: n's instance still passing, every other machine down (a reboot in flight) failing.
// min_passing=M: M instances pass; max_failing=F: at most F fail.
func (w *World) checkQuorum(n *node) {
	for _, svc := range n.services {
		var total, down int
		var names []string
		for _, o := range w.nodes {
			if !slices.Contains(o.services, svc) {
				continue
			}
			total++
			if o.down && o != n {
				down++
				names = append(names, o.name)
			}
		}
		switch {
		case strings.HasPrefix(svc, localPrefix):
			// local_only: only the node's own instance counts, and it passes.
		case svc == "shared" && total-down < w.sharedMin():
			w.violate("%s: min_passing=%d broken by %s's reboot: %d of %d passing as it went down (down: %s)", svc, w.sharedMin(), n.name, total-down, total, strings.Join(names, ","))
		case svc != "shared" && down > w.cfg.MaxFailing:
			w.violate("%s: max_failing=%d broken by %s's reboot: %d others down as it went down (%s)", svc, w.cfg.MaxFailing, n.name, down, strings.Join(names, ","))
		}
	}
}

// lockOf is group's lock record as the model holds it (empty when it cannot be read).
func (w *World) lockOf(group string) lock.Record {
	v, _, ok := w.model.Get(w.keys.GroupLock(group))
	if !ok {
		return lock.Record{}
	}
	rec, err := lock.Decode([]byte(v))
	if err != nil {
		w.violate("%s's lock record cannot be read: %v", group, err)
	}
	return rec
}

func holderNames(r lock.Record) string {
	names := make([]string, len(r.Holders))
	for i, h := range r.Holders {
		names[i] = h.Node
	}
	return strings.Join(names, ",")
}

// afterWrite checks each key written: within its bound; a lock record that grew within its
// group's limit; no node in two groups' locks; a queue (its record and asks) that reads.
func (w *World) afterWrite(keys []string) {
	queues := map[string]bool{}
	for _, key := range keys {
		if key == "" {
			continue
		}
		v, _, _ := w.model.Get(key)
		k, ok := w.keys.Parse(key)
		if !ok {
			continue
		}
		bound := 0
		switch k.Kind {
		case store.KindLock, store.KindHolders, store.KindClaims:
			bound = lock.MaxRecordBytes
		case store.KindQueue:
			bound = lock.MaxQueueBytes
		case store.KindHistory:
			bound = history.MaxBytes
		}
		if bound > 0 && len(v) > bound {
			w.violate("%s holds %d bytes, over its bound of %d", key, len(v), bound)
		}
		if k.Kind != store.KindHistory {
			w.largest = max(w.largest, len(v))
		}
		switch k.Kind {
		case store.KindLock:
			w.lockWritten(k.Group)
			w.pyLockWritten(k.Group)
		case store.KindGroupStop:
			w.checkStopped(k.Group, v)
		case store.KindLimit:
			w.chk.limitAt[k.Group] = w.sched.now
		}
		if k.Kind == store.KindQueue || k.Kind == store.KindAsk {
			queues[k.Group] = true
		}
	}
	for _, g := range slices.Sorted(maps.Keys(queues)) {
		w.queueWritten(g)
	}
	w.checkQueues()
}

// lockWritten checks a group's lock record just written.
func (w *World) lockWritten(group string) {
	rec := w.lockOf(group)
	w.checkOvertaken(group, rec)
	before := w.held[group]
	w.held[group] = len(rec.Holders)
	if len(rec.Holders) < before && w.lastEnd < 0 {
		w.lastEnd = w.requests()
	}
	if len(rec.Holders) > before {
		v, _, _ := w.model.Get(w.keys.GroupLimit(group))
		l, err := lock.ParseLimit(v)
		if err == nil && !l.Auto {
			if places := l.Places(len(w.groupNodes(group)), false); len(rec.Holders) > places {
				w.violate("%s's lock holds %d places (%s) under its limit %q", group, len(rec.Holders), holderNames(rec), v)
			}
		}
	}
	seen := map[string]string{}
	for g := range w.cfg.Groups {
		name := fmt.Sprintf("g%d", g+1)
		for _, h := range w.lockOf(name).Holders {
			if other, ok := seen[h.Node]; ok {
				w.violate("%s holds places in %s and %s", h.Node, other, name)
			}
			seen[h.Node] = name
		}
	}
}

// requests are the Consul requests of the whole fleet so far: those the model answered, and the
// daemons' watches' (see deliver).
// joined notes that node's daemon ended a run: once every node of the first ask did, the join
// is over (see World.joining).
func (w *World) joined(node string) {
	if w.joining == nil {
		return
	}
	delete(w.joining, node)
	if len(w.joining) == 0 {
		w.joinRequests, w.joining = w.requests()-w.askedAt, nil
	}
}

func (w *World) requests() int {
	return int(w.model.Stats().Total.Requests) + w.watchRequests
}

// checkHistory checks, at the end of a run, that each group's history holds a finished reboot
// for every reboot each of its nodes came back from, no more (none invented), and no fewer but
// for those an operator unlocked, which are recorded as unlocked (none lost); while the history
// has not dropped its oldest entries.
func (w *World) checkHistory() {
	for g := range w.cfg.Groups {
		group := fmt.Sprintf("g%d", g+1)
		v, _, ok := w.model.Get(w.keys.GroupHistory(group))
		if !ok {
			v = `{"version":1,"entries":[]}`
		}
		l, err := history.Decode([]byte(v))
		if err != nil {
			w.violate("%s's history cannot be read: %v", group, err)
			continue
		}
		if len(l.Entries) >= history.MaxEntries {
			continue
		}
		finished, unlocked := map[string]int{}, map[string]int{}
		for _, e := range l.Entries {
			switch e.Outcome {
			case history.Finished:
				finished[e.Node]++
			case history.Unlocked:
				unlocked[e.Node]++
			}
		}
		for _, n := range w.groupNodes(group) {
			if n.py != nil {
				continue // the Python rebootmgr keeps no history
			}
			// A reboot whose place an operator gave back is recorded as unlocked, not finished.
			if f, u := finished[n.name], unlocked[n.name]; f > n.rebooted || f+u < n.rebooted {
				w.violate("%s's history records %d finished reboots of %s (and %d unlocked), which came back from %d", group, f, n.name, u, n.rebooted)
			}
		}
	}
}

// queueWritten checks a group's queue just written: a node marked as having missed its turn
// (passed over for not answering a wake, or by a node behind it that took a place: see
// place.PassTurns and lock.Queue.Served) had no daemon to answer, or one that trouble kept from
// answering (killed, paused, slow, its agent away, its writes refused, its clock moved) within
// the time it had to answer; a daemon that runs answers at once. Such a node keeps its place in
// the queue and holds up nobody until it runs again: this is the queue's order, not safety, and
// is counted (passed_live) unless Config.StrictTurns makes it a violation.
func (w *World) queueWritten(group string) {
	q, ok := w.queueOf(group)
	if !ok {
		return
	}
	before := w.missed[group]
	now := map[string]bool{}
	for _, e := range q.Entries {
		if e.Blocked != lock.MissedTurn {
			continue
		}
		now[e.Node] = true
		n := w.machine(e.Node)
		if before[e.Node] || n == nil || n.host {
			continue
		}
		quiet := w.sched.now.Sub(n.trouble)
		if p := n.proc; p != nil && !p.dead && quiet > 2*lock.AnswerWithin {
			w.passedLive++
			if w.cfg.StrictTurns {
				w.violate("%s passed over in %s's queue as having missed its turn, with its daemon running and untroubled for %s", e.Node, group, quiet.Round(time.Second))
			} else {
				w.log(e.Node, "FINDING: passed over in %s's queue as having missed its turn, with its daemon running and untroubled for %s", group, quiet.Round(time.Second))
			}
		}
	}
	w.missed[group] = now
	w.chk.queues[group] = q
}

// queueOf is group's queue as read (its record, then its asks), checking that its asks are of
// the group's machines alone, one each: its asks are bounded by the group's machines as its
// record by its bytes.
func (w *World) queueOf(group string) (lock.Queue, bool) {
	var rec *api.KVPair
	if v, index, ok := w.model.Get(w.keys.GroupQueue(group)); ok {
		rec = &api.KVPair{Key: w.keys.GroupQueue(group), Value: []byte(v), ModifyIndex: index}
	}
	pairs := w.model.List(w.keys.GroupAsks(group))
	asks := make([]*api.KVPair, len(pairs))
	for i, p := range pairs {
		asks[i] = &api.KVPair{Key: p.Key, Value: []byte(p.Value), CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}
	}
	q, err := w.keys.DecodeGroupQueue(group, rec, asks)
	if err != nil {
		w.violate("%s's queue cannot be read: %v", group, err)
		return lock.Queue{}, false
	}
	machines := map[string]bool{}
	for _, n := range w.groupMachines(group) {
		machines[n.name] = true
	}
	for _, p := range pairs {
		if k, _ := w.keys.Parse(p.Key); !machines[k.Node] && !(group == "g1" && w.chk.flood[k.Node]) {
			w.violate("%s's queue holds an ask of %s, no machine of the group's", group, p.Key)
		}
	}
	return q, true
}
