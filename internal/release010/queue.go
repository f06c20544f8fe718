package release010

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// Queue is the order in which the nodes of a group asked for its lock: a node that passed its
// own gates and found the lock full joins it, and places are served in that order. A node
// blocked by its own gates since (health, window, disabled: Blocked) keeps its place but holds
// up nobody. Stored beside the group's lock and written, like it, only with check-and-set.
type Queue struct {
	Version int          `json:"version"`
	Entries []QueueEntry `json:"entries"`
	// Freed is when a place in the group's lock was last given back (see QueueGrace).
	Freed time.Time `json:"freed,omitzero"`
}

// QueueEntry is one node waiting for a place.
type QueueEntry struct {
	Node string `json:"node"`
	// Since is when it joined; its turn counts from there.
	Since time.Time `json:"since"`
	// Blocked names the gate of its own that holds it now ("" when only the lock does); a node
	// that let its turn pass is blocked "missed its turn" until it runs again.
	Blocked string `json:"blocked,omitempty"`
}

// MissedTurn is the Blocked of a node that did not take a place within QueueGrace of its turn.
const MissedTurn = "missed its turn"

func queueShape() *shape {
	entry := &shape{fields: map[string]*shape{}}
	for _, name := range jsonFields(reflect.TypeFor[QueueEntry]()) {
		entry.fields[name] = nil
	}
	return &shape{fields: map[string]*shape{"version": nil, "entries": {elem: entry}, "freed": nil}}
}

// DecodeQueue parses a stored queue strictly, as Decode a lock record.
func DecodeQueue(data []byte) (Queue, error) {
	if err := checkShape(data, queueShape()); err != nil {
		return Queue{}, fmt.Errorf("not a queue record: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var q Queue
	if err := dec.Decode(&q); err != nil {
		return Queue{}, fmt.Errorf("not a queue record: %w", err)
	}
	switch {
	case q.Version < 1:
		return Queue{}, fmt.Errorf("not a queue record: version %d", q.Version)
	case q.Version > Version:
		return Queue{}, fmt.Errorf("queue record version %d was written by a newer rebootmgr (this one knows %d)", q.Version, Version)
	}
	seen := map[string]bool{}
	for _, e := range q.Entries {
		if e.Node == "" || seen[e.Node] {
			return Queue{}, fmt.Errorf("not a queue record: node %q empty or named twice", e.Node)
		}
		seen[e.Node] = true
	}
	return q, nil
}
