package lock

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// PlanQueue is how want, a change of the queue read as record rec and asks (see Merged), is
// written within budget operations of a transaction for the asks:
//
//   - The longest run at want's end of entries whose nodes have asks, in the order the asks were
//     created, stays in the asks: those whose entry changed are rewritten in place. A node new
//     to the queue at its very end joins as an ask of its own (Create).
//   - The rest is the record. When it is written anyway (it changed), as many asks after it as
//     fit the record's bound and the budget are folded into it (each checked and deleted in the
//     same transaction), so that the record holds the front of the queue and the asks stay few.
//     An ask is never deleted unless the record written holds its node, or its node left the
//     queue.
//   - A record that stays as read is checked, not written: a node joining the queue changes
//     nothing but its own new key.
//
// Once written, the queue reads as want, but for what the budget left out (an ask's change or
// deletion beyond it, which orders no worse than before: the order is no safety) and for entries
// past the record's bound that are no ask (cut as Encode cuts them).
func PlanQueue(rec Queue, asks []Ask, want Queue, budget int) QueueWrite {
	own, dups := asksOf(rec, asks)
	entries := want.Entries
	end := len(entries)
	var create *QueueEntry
	if end > 0 {
		last := entries[end-1]
		if _, asked := own[last.Node]; !asked && !slices.ContainsFunc(rec.Entries, func(e QueueEntry) bool { return e.Node == last.Node }) {
			create, end = &last, end-1
		}
	}
	start := end
	for start > 0 {
		a, ok := own[entries[start-1].Node]
		if !ok || start < end && askFirst(a, own[entries[start].Node]) >= 0 {
			break
		}
		start--
	}
	p := planner{own: own, want: want, budget: budget}
	record := Queue{Version: want.Version, Entries: slices.Clone(entries[:start]), Freed: want.Freed}
	if record.Version == 0 {
		record.Version = Version
	}
	kept := nodesOf(entries)
	if create != nil {
		// The node's own join, which the change is for: always within the budget.
		p.budget--
		p.w.Create = create
	}
	for _, a := range slices.Concat(sortedAsks(own), dups) {
		if !kept[a.Entry.Node] && p.take(1) {
			p.w.Drop = append(p.w.Drop, a)
		}
	}
	for _, e := range entries[start:end] {
		if a := own[e.Node]; !sameEntry(a.Entry, e) && p.take(1) {
			a.Entry = e
			p.w.Rewrite = append(p.w.Rewrite, a)
		}
	}
	p.foldInto(record, storedNodes(record))
	if record.Equal(rec) {
		return p.w
	}
	p.foldMore(&record, start, end)
	p.dropDups(dups, storedNodes(record))
	p.w.Record = &record
	return p.w
}

// RecordOnly is how want is written by a writer that may not write the asks (a token from
// before them): the record alone, holding want whole, as far as its bound allows. The asks stay
// as they are: those of nodes the record now holds are hidden by it (and deleted by the next
// writer that may), the rest are read after it as before; an ask of a node that left stays,
// until a writer that may deletes it. It says false when a node new to the queue at its end is
// cut from the record by its bound: there is no room for it.
func RecordOnly(rec Queue, asks []Ask, want Queue) (QueueWrite, bool) {
	record := Queue{Version: want.Version, Entries: slices.Clone(want.Entries), Freed: want.Freed}
	if record.Version == 0 {
		record.Version = Version
	}
	if record.Equal(Merged(rec, asks)) {
		return QueueWrite{}, true
	}
	if n := len(want.Entries); n > 0 {
		last := want.Entries[n-1]
		if _, in := Merged(rec, asks).Place(last.Node); !in && !storedNodes(record)[last.Node] {
			return QueueWrite{}, false
		}
	}
	return QueueWrite{Record: &record}, true
}

// asksOf sorts asks into those the queue as read takes its entries from (by node), and those
// of nodes the record holds (never read: deleted when the record is written).
func asksOf(rec Queue, asks []Ask) (own map[string]Ask, dups []Ask) {
	in := nodesOf(rec.Entries)
	own = map[string]Ask{}
	for _, a := range asks {
		if in[a.Entry.Node] {
			dups = append(dups, a)
		} else {
			own[a.Entry.Node] = a
		}
	}
	slices.SortFunc(dups, askFirst)
	return own, dups
}

// sortedAsks are m's asks in the order they were created (a plan is the same however often it
// is made).
func sortedAsks(m map[string]Ask) []Ask {
	out := make([]Ask, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, askFirst)
	return out
}

func sameEntry(a, b QueueEntry) bool {
	return a.Node == b.Node && a.Since.Equal(b.Since) && a.Blocked == b.Blocked
}

// storedNodes are the nodes of q as stored: all of them, but those cut by its bound.
func storedNodes(q Queue) map[string]bool {
	data, whole, err := q.encode()
	if err != nil {
		return map[string]bool{}
	}
	if whole && !slices.ContainsFunc(q.Entries, func(e QueueEntry) bool { return !utf8.ValidString(e.Node) }) {
		// Stored whole, and every name as it is (JSON spells anew only what is not UTF-8):
		// no need to read it back.
		return nodesOf(q.Entries)
	}
	var stored Queue
	if json.Unmarshal(data, &stored) != nil {
		return map[string]bool{}
	}
	return nodesOf(stored.Entries)
}

// planner keeps the operations a plan has left.
type planner struct {
	own    map[string]Ask
	want   Queue
	budget int
	w      QueueWrite
}

func (p *planner) take(n int) bool {
	if p.budget < n {
		return false
	}
	p.budget -= n
	return true
}

// foldInto folds the asks of the entries record holds (stored: not cut by its bound) into it.
func (p *planner) foldInto(record Queue, stored map[string]bool) {
	for _, e := range record.Entries {
		if a, ok := p.own[e.Node]; ok && stored[e.Node] && p.take(2) {
			p.w.Fold = append(p.w.Fold, a)
		}
	}
}

// foldMore folds the asks of want's entries from start on (up to end, then the node joining)
// into record while it stays within its bound and the budget lasts.
func (p *planner) foldMore(record *Queue, start, end int) {
	size := sizeOf(record)
	for i := start; i <= end; i++ {
		var e QueueEntry
		cost := 2
		switch {
		case i < end:
			e = p.want.Entries[i]
			if slices.ContainsFunc(p.w.Rewrite, func(r Ask) bool { return r.Entry.Node == e.Node }) {
				cost = 1 // its rewrite becomes its fold
			}
		case p.w.Create != nil:
			e, cost = *p.w.Create, -1
		default:
			return
		}
		grown := size + sizeOf(e) + 1
		if grown > MaxQueueBytes || !p.take(cost) {
			return
		}
		size = grown
		record.Entries = append(record.Entries, e)
		if cost < 0 {
			p.w.Create = nil
			return
		}
		p.w.Rewrite = slices.DeleteFunc(p.w.Rewrite, func(r Ask) bool { return r.Entry.Node == e.Node })
		p.w.Fold = append(p.w.Fold, p.own[e.Node])
	}
}

// dropDups deletes, while the budget lasts, the asks of nodes the record written holds.
func (p *planner) dropDups(dups []Ask, held map[string]bool) {
	for _, a := range dups {
		if held[a.Entry.Node] && p.take(1) {
			p.w.Drop = append(p.w.Drop, a)
		}
	}
}
