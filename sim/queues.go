package sim

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
)

// The checks of a group's queue read it as every reader does (its record, then its asks: see
// store.Keys.DecodeGroupQueue), and keep what they read: the record is read again when it is
// written, an ask when it is written, so that a write costs the checks what it wrote rather
// than the whole queue.

// queueSeen is a group's queue as the checks last read it.
type queueSeen struct {
	// missedInRecord are the record's entries marked as having missed their turn, in its order;
	// inRecord its nodes.
	missedInRecord []lock.QueueEntry
	inRecord       map[string]bool
	// missedAsks are the asks so marked, by key.
	missedAsks map[string]lock.Ask
}

// queueWritten checks a group's queue whose record or asks (keys) were just written: a node
// marked in it as having missed its turn (passed over for not answering a wake, or by a node
// behind it that took a place: see place.PassTurns and lock.Queue.Served) had no daemon to
// answer, or one that trouble kept from answering (killed, paused, slow, its agent away, its
// writes refused, its clock moved) within the time it had to answer; a daemon that runs answers
// at once. Such a node keeps its place in the queue and holds up nobody until it runs again:
// this is the queue's order, not safety, and is counted (passed_live) unless Config.StrictTurns
// makes it a violation.
func (w *World) queueWritten(group string, keys []string) {
	if !w.readQueue(group, keys) {
		return
	}
	before := w.missed[group]
	now := map[string]bool{}
	for _, e := range w.queues[group].missedEntries() {
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
}

// missedEntries are the entries of the queue as read (the record's, then the asks of the nodes
// it does not hold, in the order they were created) marked as having missed their turn.
func (q *queueSeen) missedEntries() []lock.QueueEntry {
	out := slices.Clone(q.missedInRecord)
	var asks []lock.Ask
	for _, a := range q.missedAsks {
		if !q.inRecord[a.Entry.Node] {
			asks = append(asks, a)
		}
	}
	slices.SortFunc(asks, func(a, b lock.Ask) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.Entry.Node, b.Entry.Node))
	})
	for _, a := range asks {
		out = append(out, a.Entry)
	}
	return out
}

// readQueue reads what keys changed of group's queue, checking that it reads and that its asks
// are of the group's machines alone, one each: its asks are bounded by the group's machines as
// its record by its bytes. False at a violation.
func (w *World) readQueue(group string, keys []string) bool {
	q := w.queues[group]
	if q == nil {
		q = &queueSeen{inRecord: map[string]bool{}, missedAsks: map[string]lock.Ask{}}
		w.queues[group] = q
	}
	recKey, asksPrefix := w.keys.GroupQueue(group), w.keys.GroupAsks(group)
	if slices.Contains(keys, recKey) && !w.readRecord(group, q) {
		return false
	}
	var asks []string
	for _, key := range keys {
		if !strings.HasPrefix(key, asksPrefix) {
			continue
		}
		asks = append(asks, key)
		delete(q.missedAsks, key)
		p, ok := w.model.Pair(key)
		if !ok {
			continue
		}
		a, err := w.keys.DecodeAsks(group, []*api.KVPair{{Key: p.Key, Value: []byte(p.Value), CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}})
		if err != nil {
			w.violate("%s's queue cannot be read: %v", group, err)
			return false
		}
		if len(a) == 1 && a[0].Entry.Blocked == lock.MissedTurn {
			q.missedAsks[key] = a[0]
		}
	}
	for _, key := range asks {
		if _, ok := w.model.Pair(key); !ok {
			continue
		}
		k, _ := w.keys.Parse(key)
		if n := w.machine(k.Node); n == nil || n.group != group {
			w.violate("%s's queue holds an ask of %s, no machine of the group's", group, key)
		}
	}
	return true
}

// readRecord reads group's queue's record again.
func (w *World) readRecord(group string, q *queueSeen) bool {
	var rec *api.KVPair
	if p, ok := w.model.Pair(w.keys.GroupQueue(group)); ok {
		rec = &api.KVPair{Key: p.Key, Value: []byte(p.Value), CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}
	}
	read, err := w.keys.DecodeGroupQueue(group, rec, nil)
	if err != nil {
		w.violate("%s's queue cannot be read: %v", group, err)
		return false
	}
	q.missedInRecord, q.inRecord = nil, map[string]bool{}
	for _, e := range read.Entries {
		q.inRecord[e.Node] = true
		if e.Blocked == lock.MissedTurn {
			q.missedInRecord = append(q.missedInRecord, e)
		}
	}
	return true
}
