package consulmodel

import (
	"bytes"
	"sort"
	"strings"
)

// entry is one key's state. An entry is never changed once stored: a write stores a new one,
// so that answers can share it.
type entry struct {
	key                                 string
	value                               []byte
	flags                               uint64
	session                             string
	createIndex, modifyIndex, lockIndex uint64
}

// kvStore is the KV table: the entries by key, their keys sorted (for prefix reads), and the
// tombstones of deleted keys with the index of their deletion (so that a prefix's index never
// goes back, as Consul's graveyard; the model never reaps them).
type kvStore struct {
	entries  map[string]*entry
	keys     []string
	tombs    map[string]uint64
	tombKeys []string
	// index is the table's index: the last index of a write or a deletion.
	index uint64
	// undo, while a transaction runs, records how to take back each change (nil otherwise).
	undo *[]func()
}

func (s *kvStore) init() {
	s.entries = map[string]*entry{}
	s.tombs = map[string]uint64{}
}

// insertSorted and removeSorted keep a sorted slice of keys.
func insertSorted(keys []string, k string) []string {
	i := sort.SearchStrings(keys, k)
	if i < len(keys) && keys[i] == k {
		return keys
	}
	keys = append(keys, "")
	copy(keys[i+1:], keys[i:])
	keys[i] = k
	return keys
}

func removeSorted(keys []string, k string) []string {
	i := sort.SearchStrings(keys, k)
	if i < len(keys) && keys[i] == k {
		return append(keys[:i], keys[i+1:]...)
	}
	return keys
}

// prefixRange is the range of keys starting with prefix.
func prefixRange(keys []string, prefix string) []string {
	i := sort.SearchStrings(keys, prefix)
	j := i
	for j < len(keys) && strings.HasPrefix(keys[j], prefix) {
		j++
	}
	return keys[i:j]
}

func (s *kvStore) get(k string) *entry { return s.entries[k] }

// store puts e in the table at idx, recording how to take it back in a transaction.
func (s *kvStore) store(e *entry, idx uint64) {
	prev, prevIndex := s.entries[e.key], s.index
	if s.undo != nil {
		*s.undo = append(*s.undo, func() {
			if prev == nil {
				delete(s.entries, e.key)
				s.keys = removeSorted(s.keys, e.key)
			} else {
				s.entries[e.key] = prev
			}
			s.index = prevIndex
		})
	}
	if prev == nil {
		s.keys = insertSorted(s.keys, e.key)
	}
	s.entries[e.key] = e
	s.index = idx
}

// remove deletes key k at idx, leaving a tombstone; false when it was absent.
func (s *kvStore) remove(k string, idx uint64) bool {
	prev := s.entries[k]
	if prev == nil {
		return false
	}
	prevTomb, hadTomb := s.tombs[k]
	prevIndex := s.index
	if s.undo != nil {
		*s.undo = append(*s.undo, func() {
			s.entries[k] = prev
			s.keys = insertSorted(s.keys, k)
			if hadTomb {
				s.tombs[k] = prevTomb
			} else {
				delete(s.tombs, k)
				s.tombKeys = removeSorted(s.tombKeys, k)
			}
			s.index = prevIndex
		})
	}
	delete(s.entries, k)
	s.keys = removeSorted(s.keys, k)
	if !hadTomb {
		s.tombKeys = insertSorted(s.tombKeys, k)
	}
	s.tombs[k] = idx
	s.index = idx
	return true
}

// list is the entries under prefix, sorted by key, and the prefix's index as Consul gives it:
// the highest ModifyIndex among them or among the tombstones under the prefix, else the
// table's index (all of the table's for the empty prefix).
func (s *kvStore) list(prefix string) ([]*entry, uint64) {
	keys := prefixRange(s.keys, prefix)
	out := make([]*entry, len(keys))
	var idx uint64
	for i, k := range keys {
		out[i] = s.entries[k]
		idx = max(idx, out[i].modifyIndex)
	}
	if prefix == "" {
		idx = s.index
	}
	for _, k := range prefixRange(s.tombKeys, prefix) {
		idx = max(idx, s.tombs[k])
	}
	if idx == 0 {
		idx = s.index
	}
	return out, idx
}

// keyIndex is the index of a read of one key: its ModifyIndex, or the table's index when it is
// absent (never 0: Consul answers 1 for an empty table).
func (s *kvStore) keyIndex(k string) uint64 {
	if e := s.entries[k]; e != nil {
		return e.modifyIndex
	}
	return max(s.index, 1)
}

// set writes key's value and flags at idx, keeping its session; a write that changes nothing
// keeps its ModifyIndex, as Consul does. It returns the entry as stored and whether it changed.
func (s *kvStore) set(k string, value []byte, flags uint64, idx uint64) (*entry, bool) {
	prev := s.entries[k]
	e := &entry{key: k, value: value, flags: flags, createIndex: idx, modifyIndex: idx}
	if prev != nil {
		// A plain write keeps the session but not the lock index (Consul's kvsSetTxn).
		if bytes.Equal(prev.value, value) && prev.flags == flags && prev.lockIndex == 0 {
			return prev, false
		}
		e.createIndex, e.session = prev.createIndex, prev.session
	}
	s.store(e, idx)
	return e, true
}

// cas writes key if its ModifyIndex is cas (0: only if absent).
func (s *kvStore) cas(k string, value []byte, flags, cas, idx uint64) (*entry, bool, bool) {
	prev := s.entries[k]
	switch {
	case cas == 0 && prev != nil, cas != 0 && prev == nil, prev != nil && prev.modifyIndex != cas:
		return nil, false, false
	}
	e, changed := s.set(k, value, flags, idx)
	return e, true, changed
}

// deleteCAS deletes key if its ModifyIndex is cas; an absent key counts as deleted.
func (s *kvStore) deleteCAS(k string, cas, idx uint64) (ok, changed bool) {
	prev := s.entries[k]
	if prev == nil {
		return true, false
	}
	if prev.modifyIndex != cas {
		return false, false
	}
	return true, s.remove(k, idx)
}

// deleteTree deletes every key under prefix and returns them.
func (s *kvStore) deleteTree(prefix string, idx uint64) []string {
	keys := append([]string(nil), prefixRange(s.keys, prefix)...)
	for _, k := range keys {
		s.remove(k, idx)
	}
	return keys
}

// lock takes key's lock for session (which must exist), as ?acquire does: false when another
// session holds it.
func (s *kvStore) lock(k string, value []byte, flags uint64, session string, idx uint64) (*entry, bool) {
	prev := s.entries[k]
	e := &entry{key: k, value: value, flags: flags, session: session, createIndex: idx, modifyIndex: idx, lockIndex: 1}
	if prev != nil {
		switch {
		case prev.session == session:
			e.lockIndex = prev.lockIndex
		case prev.session != "":
			return nil, false
		default:
			e.lockIndex = prev.lockIndex + 1
		}
		e.createIndex = prev.createIndex
	}
	s.store(e, idx)
	return e, true
}

// unlock gives back key's lock held by session, as ?release does.
func (s *kvStore) unlock(k string, value []byte, flags uint64, session string, idx uint64) (*entry, bool) {
	prev := s.entries[k]
	if prev == nil || prev.session != session {
		return nil, false
	}
	e := &entry{key: k, value: value, flags: flags, createIndex: prev.createIndex, modifyIndex: idx, lockIndex: prev.lockIndex}
	s.store(e, idx)
	return e, true
}

// release takes session's lock off key (its session ended), or deletes the key when the
// session's behavior is "delete".
func (s *kvStore) release(k, session string, del bool, idx uint64) bool {
	prev := s.entries[k]
	if prev == nil || prev.session != session {
		return false
	}
	if del {
		return s.remove(k, idx)
	}
	e := *prev
	e.session, e.modifyIndex = "", idx
	s.store(&e, idx)
	return true
}
