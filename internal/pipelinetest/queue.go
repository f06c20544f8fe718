package pipelinetest

import (
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// viewVersion is what a View of the store was read at: the index of every key, and the group's
// queue as stored (its record and its asks).
type viewVersion struct {
	index map[string]uint64
	queue lock.Queue
	asks  []lock.Ask
}

// queueBudget is how many operations a change of the queue may take for its asks, as
// store.Consul has them beside the lock's own in one of Consul's transactions.
const queueBudget = 64 - 4

func askKey(g, node string) string { return Layout().GroupAsk(g, node) }

// readQueue reads the group's queue record and its asks. The store is locked.
func (s *Store) readQueue() (lock.Queue, []lock.Ask, error) {
	pairs := []*api.KVPair{}
	prefix := Layout().GroupAsks(s.Group)
	for key, e := range s.kv {
		if strings.HasPrefix(key, prefix) {
			pairs = append(pairs, &api.KVPair{Key: key, Value: []byte(e.value), CreateIndex: e.created, ModifyIndex: e.index})
		}
	}
	var record *api.KVPair
	if e, ok := s.kv[queueKey(s.Group)]; ok {
		record = &api.KVPair{Key: queueKey(s.Group), Value: []byte(e.value)}
	}
	q, err := Layout().DecodeGroupQueue(s.Group, record, nil)
	if err != nil {
		return lock.Queue{}, nil, err
	}
	asks, err := Layout().DecodeAsks(s.Group, pairs)
	return q, asks, err
}

// asksAsRead says whether the asks w writes are as the view it was planned on read them: one
// created is absent, one rewritten or folded in is at its index, one deleted is at its index or
// gone (Consul's delete-cas of a key gone succeeds). The store is locked.
func (s *Store) asksAsRead(w lock.QueueWrite) bool {
	at := func(a lock.Ask) bool {
		e, ok := s.kv[askKey(s.Group, a.Entry.Node)]
		return ok && e.index == a.Index
	}
	if c := w.Create; c != nil && hasKey(s.kv, askKey(s.Group, c.Node)) {
		return false
	}
	for _, a := range slices.Concat(w.Rewrite, w.Fold) {
		if !at(a) {
			return false
		}
	}
	for _, a := range w.Drop {
		if hasKey(s.kv, askKey(s.Group, a.Entry.Node)) && !at(a) {
			return false
		}
	}
	return true
}

// tellLate tells the nodes whose asks were written after the view of version was read what ch,
// just written, calls for, as store.Consul does (see place.WokenLate). The store is locked.
func (s *Store) tellLate(v place.View, ch place.Change, version viewVersion) error {
	if !place.MayWakeLate(v, ch) {
		return nil
	}
	_, asks, err := s.readQueue()
	if err != nil {
		return err
	}
	var late []lock.Ask
	for _, a := range asks {
		if !slices.ContainsFunc(version.asks, func(b lock.Ask) bool { return b.Entry.Node == a.Entry.Node && b.Created == a.Created }) {
			late = append(late, a)
		}
	}
	for _, w := range place.WokenLate(v, ch, lock.Merged(lock.Queue{}, late).Entries) {
		s.put(turnKey(s.Group, w.Node), store.TurnValue(w, time.Now()))
	}
	return nil
}

// writeQueue writes w, the queue want as planned. The store is locked.
func (s *Store) writeQueue(w lock.QueueWrite, want *lock.Queue) error {
	if w.Record != nil {
		if err := s.store(queueKey(s.Group), len(want.Entries) == 0, w.Record.Encode); err != nil {
			return err
		}
	}
	put := func(e lock.QueueEntry) error {
		data, err := lock.EncodeAsk(e)
		if err == nil {
			s.put(askKey(s.Group, e.Node), string(data))
		}
		return err
	}
	if w.Create != nil {
		if err := put(*w.Create); err != nil {
			return err
		}
	}
	for _, a := range w.Rewrite {
		if err := put(a.Entry); err != nil {
			return err
		}
	}
	for _, a := range slices.Concat(w.Fold, w.Drop) {
		s.del(askKey(s.Group, a.Entry.Node))
	}
	return nil
}

// PutQueue writes the group's queue as q alone, as an operator would: its record, and none of
// its asks.
func (s *Store) PutQueue(q lock.Queue) error {
	data, err := q.Encode()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.kv {
		if strings.HasPrefix(key, Layout().GroupAsks(s.Group)) {
			s.del(key)
		}
	}
	s.put(queueKey(s.Group), string(data))
	return nil
}

// Get reads key as an operator would: its value, and whether it exists.
func (s *Store) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kv[key]
	return e.value, ok
}
