package lock

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Ask is a node's entry in its group's queue kept in a key of its own beside the queue's record
// (the store's asks of the group): a node that joins the queue and changes nothing else creates
// it, so that nodes asking at once never race on the record. Its place is the order Consul
// created the keys in (Created: the index of the write that created it, never a clock); a change
// of its entry rewrites it in place. The queue as read is the record's entries, then the asks of
// the nodes the record does not hold, in that order (see Merged); a write of the record folds
// asks into it (see PlanQueue).
type Ask struct {
	Entry QueueEntry
	// Created is the key's CreateIndex, Index its ModifyIndex (for a check-and-set).
	Created, Index uint64
}

// askFirst orders asks as the queue holds them: by when they were created, then (never two in
// one write, but a key written by hand may) by node.
func askFirst(a, b Ask) int {
	return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.Entry.Node, b.Entry.Node))
}

// EncodeAsk is an ask's value: its entry as the record holds it ({"node","since"}, and
// "blocked" when a gate of its own holds it).
func EncodeAsk(e QueueEntry) ([]byte, error) {
	e.Since = e.Since.UTC()
	return json.Marshal(e)
}

// DecodeAsk parses an ask's value strictly, as DecodeQueue a record.
func DecodeAsk(data []byte) (QueueEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e QueueEntry
	if err := dec.Decode(&e); err != nil {
		return QueueEntry{}, fmt.Errorf("not an ask of the queue: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return QueueEntry{}, errors.New("not an ask of the queue: more than one value")
	}
	if e.Node == "" {
		return QueueEntry{}, errors.New("not an ask of the queue: no node")
	}
	return e, nil
}

// Merged is the queue as read from its record rec and its asks: the record's entries, then the
// asks of the nodes the record does not hold, in the order they were created.
func Merged(rec Queue, asks []Ask) Queue {
	out := rec.clone()
	if out.Version == 0 {
		out.Version = Version
	}
	in := nodesOf(rec.Entries)
	for _, a := range slices.SortedFunc(slices.Values(asks), askFirst) {
		if !in[a.Entry.Node] {
			in[a.Entry.Node] = true
			out.Entries = append(out.Entries, a.Entry)
		}
	}
	return out
}

func nodesOf(entries []QueueEntry) map[string]bool {
	out := make(map[string]bool, len(entries))
	for _, e := range entries {
		out[e.Node] = true
	}
	return out
}

// QueueWrite is how a change of a group's queue is written (see PlanQueue).
type QueueWrite struct {
	// Record is the record as it is to be; nil when it stays as read (checked, not written).
	Record *Queue
	// Create is a node's entry joining the queue at its end, as an ask of its own.
	Create *QueueEntry
	// Rewrite are asks whose entry changes (Entry as it is to be, Index as read): they keep their
	// place.
	Rewrite []Ask
	// Fold are the asks the record now holds: each is checked at its Index, and deleted.
	Fold []Ask
	// Drop are asks deleted at their Index: their node left the queue, or the record holds it.
	Drop []Ask
}

// Ops is how many operations of a transaction the asks take.
func (w QueueWrite) Ops() int {
	n := len(w.Rewrite) + 2*len(w.Fold) + len(w.Drop)
	if w.Create != nil {
		n++
	}
	return n
}

// Merged is the queue as read once w is written over rec and asks.
func (w QueueWrite) Merged(rec Queue, asks []Ask) Queue {
	if w.Record != nil {
		rec = *w.Record
	}
	gone := map[string]bool{}
	for _, a := range slices.Concat(w.Fold, w.Drop) {
		gone[a.Entry.Node] = true
	}
	var out []Ask
	for _, a := range asks {
		if i := slices.IndexFunc(w.Rewrite, func(r Ask) bool { return r.Entry.Node == a.Entry.Node }); i >= 0 {
			a.Entry = w.Rewrite[i].Entry
		}
		if !gone[a.Entry.Node] {
			out = append(out, a)
		}
	}
	if w.Create != nil {
		out = append(out, Ask{Entry: *w.Create, Created: ^uint64(0)})
	}
	return Merged(rec, out)
}
