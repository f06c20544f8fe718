package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"

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
		for _, o := range w.bySvc[svc] {
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
	// The locks written are read first: each is checked against every group's lock as it is.
	for _, key := range keys {
		if k, ok := w.keys.Parse(key); ok && k.Kind == store.KindLock {
			w.locks[k.Group] = w.lockOf(k.Group)
		}
	}
	queues := map[string][]string{}
	for _, key := range keys {
		if key == "" {
			continue
		}
		v, _, _ := w.model.Get(key)
		k, ok := w.keys.Parse(key)
		if !ok {
			// No key of rebootmgr's; but one under a group's asks is read as an ask.
			for _, group := range slices.Sorted(maps.Keys(w.byGroup)) {
				if strings.HasPrefix(key, w.keys.GroupAsks(group)) {
					queues[group] = append(queues[group], key)
				}
			}
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
			queues[k.Group] = append(queues[k.Group], key)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(queues)) {
		w.queueWritten(g, queues[g])
	}
	w.checkQueues()
}

// lockWritten checks a group's lock record just written.
func (w *World) lockWritten(group string) {
	rec := w.locks[group]
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
			if places := l.Places(len(w.byGroup[group]), false); len(rec.Holders) > places {
				w.violate("%s's lock holds %d places (%s) under its limit %q", group, len(rec.Holders), holderNames(rec), v)
			}
		}
	}
	seen := map[string]string{}
	for g := range w.cfg.Groups {
		name := fmt.Sprintf("g%d", g+1)
		for _, h := range w.locks[name].Holders {
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
	return int(w.model.Requests()) + w.watchRequests
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
