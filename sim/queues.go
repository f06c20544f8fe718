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
	// record are the record's entries, in its order; inRecord its nodes; missedInRecord those
	// of its entries marked as having missed their turn.
	record         []lock.QueueEntry
	inRecord       map[string]bool
	missedInRecord []lock.QueueEntry
	// asks are the asks by key, order their keys in the order the queue holds them (see
	// lock.Merged), and missedAsks those marked as having missed their turn.
	asks       map[string]lock.Ask
	order      []string
	missedAsks map[string]lock.Ask
}

func newQueueSeen() *queueSeen {
	return &queueSeen{inRecord: map[string]bool{}, asks: map[string]lock.Ask{}, missedAsks: map[string]lock.Ask{}}
}

// entries yields the queue's entries in its order (the record's, then the asks of the nodes it
// does not hold: see lock.Merged), until yield returns false: a check that looks at the front
// of a long queue reads only its front.
func (q *queueSeen) entries(yield func(lock.QueueEntry) bool) {
	for _, e := range q.record {
		if !yield(e) {
			return
		}
	}
	for _, key := range q.order {
		if a := q.asks[key]; !q.inRecord[a.Entry.Node] && !yield(a.Entry) {
			return
		}
	}
}

// setAsk keeps a (nil: none) as the ask at key, in its place in the queue's order.
func (q *queueSeen) setAsk(key string, a *lock.Ask) {
	old, had := q.asks[key]
	delete(q.missedAsks, key)
	if had && (a == nil || a.Created != old.Created) {
		if i, ok := slices.BinarySearchFunc(q.order, old, q.askAt); ok {
			q.order = slices.Delete(q.order, i, i+1)
		}
		delete(q.asks, key)
		had = false
	}
	if a == nil {
		return
	}
	if !had {
		i, _ := slices.BinarySearchFunc(q.order, *a, q.askAt)
		q.order = slices.Insert(q.order, i, key)
	}
	q.asks[key] = *a
	if a.Entry.Blocked == lock.MissedTurn {
		q.missedAsks[key] = *a
	}
}

// askAt compares the ask at key with a in the queue's order.
func (q *queueSeen) askAt(key string, a lock.Ask) int {
	b := q.asks[key]
	return cmp.Or(cmp.Compare(b.Created, a.Created), cmp.Compare(b.Entry.Node, a.Entry.Node))
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
		q = newQueueSeen()
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
		p, ok := w.model.Pair(key)
		if !ok {
			q.setAsk(key, nil)
			continue
		}
		a, err := w.keys.DecodeAsks(group, []*api.KVPair{{Key: p.Key, Value: []byte(p.Value), CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}})
		if err != nil {
			w.violate("%s's queue cannot be read: %v", group, err)
			return false
		}
		if len(a) == 1 {
			q.setAsk(key, &a[0])
		} else {
			q.setAsk(key, nil)
		}
	}
	for _, key := range asks {
		if _, ok := w.model.Pair(key); !ok {
			continue
		}
		k, _ := w.keys.Parse(key)
		if n := w.machine(k.Node); (n == nil || n.group != group) && !(group == "g1" && w.chk.flood[k.Node]) {
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
	q.record, q.missedInRecord, q.inRecord = read.Entries, nil, map[string]bool{}
	for _, e := range read.Entries {
		q.inRecord[e.Node] = true
		if e.Blocked == lock.MissedTurn {
			q.missedInRecord = append(q.missedInRecord, e)
		}
	}
	return true
}
