package consulmodel

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"
)

// MaxValueSize is Consul's default kv_max_value_size (and txn_max_req_len): a larger value, or
// a larger transaction, is refused with 413.
const MaxValueSize = 512 * 1024

// kvSizeURL is where Consul's 413 of a KV write points.
const kvSizeURL = "https://www.consul.io/docs/agent/config/config-files#kv_max_value_size"

func (e *entry) pair(withValue bool) *api.KVPair {
	p := &api.KVPair{Key: e.key, CreateIndex: e.createIndex, ModifyIndex: e.modifyIndex, LockIndex: e.lockIndex, Flags: e.flags, Session: e.session}
	if withValue {
		p.Value = e.value
	}
	return p
}

func has(c *Call, param string) bool {
	_, ok := c.Query[param]
	return ok
}

// kvRoute serves /v1/kv/KEY: get, ?recurse, ?keys (&separator), put (?cas, ?flags, ?acquire,
// ?release), delete (?cas, ?recurse).
func (m *Model) kvRoute(c *Call, key string) (endpoint, *reply) {
	switch c.Method {
	case http.MethodGet:
		return m.kvRead(c, key)
	case http.MethodPut:
		return m.kvPut(c, key)
	case http.MethodDelete:
		return m.kvDelete(c, key)
	}
	return endpoint{}, nil
}

func (m *Model) kvRead(c *Call, key string) (endpoint, *reply) {
	switch {
	case has(c, "keys"):
		sep := c.Query.Get("separator")
		if !has(c, "separator") {
			sep = c.Query.Get("seperator")
		}
		return endpoint{
			index: func() uint64 { _, idx := m.kv.list(key); return idx },
			watch: m.waits.onPrefix(key),
			read:  func() reply { return m.kvKeys(key, sep) },
		}, nil
	case has(c, "recurse"):
		return endpoint{
			index: func() uint64 { _, idx := m.kv.list(key); return idx },
			watch: m.waits.onPrefix(key),
			read: func() reply {
				entries, idx := m.kv.list(key)
				if len(entries) == 0 {
					return textReply(http.StatusNotFound, "").withIndex(max(idx, 1))
				}
				pairs := make([]*api.KVPair, len(entries))
				for i, e := range entries {
					pairs[i] = e.pair(true)
				}
				return jsonReply(pairs).withIndex(idx)
			},
		}, nil
	case key == "":
		return endpoint{}, badRequest("Missing key name")
	}
	raw := has(c, "raw")
	return endpoint{
		index: func() uint64 { return m.kv.keyIndex(key) },
		watch: m.waits.onKey(key),
		read: func() reply {
			e := m.kv.get(key)
			switch {
			case e == nil:
				return textReply(http.StatusNotFound, "").withIndex(m.kv.keyIndex(key))
			case raw:
				return reply{status: http.StatusOK, body: e.value, index: e.modifyIndex, meta: true}
			}
			return jsonReply([]*api.KVPair{e.pair(true)}).withIndex(e.modifyIndex)
		},
	}, nil
}

// kvKeys lists the keys under prefix, cut after the first separator past the prefix.
func (m *Model) kvKeys(prefix, sep string) reply {
	entries, idx := m.kv.list(prefix)
	keys := []string{}
	for _, e := range entries {
		k := e.key
		if sep != "" {
			if i := strings.Index(k[len(prefix):], sep); i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
				if len(keys) > 0 && keys[len(keys)-1] == k {
					continue
				}
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 && prefix != "" {
		return textReply(http.StatusNotFound, "").withIndex(max(idx, 1))
	}
	return jsonReply(keys).withIndex(max(idx, 1))
}

// conflicting says whether more than one of params is set.
func conflicting(c *Call, params ...string) bool {
	n := 0
	for _, p := range params {
		if has(c, p) {
			n++
		}
	}
	return n > 1
}

func parseUint(c *Call, param string) (uint64, *reply) {
	if !has(c, param) {
		return 0, nil
	}
	v, err := strconv.ParseUint(c.Query.Get(param), 10, 64)
	if err != nil {
		r := textReply(http.StatusInternalServerError, err.Error())
		return 0, &r
	}
	return v, nil
}

func (m *Model) kvPut(c *Call, key string) (endpoint, *reply) {
	if key == "" {
		return endpoint{}, badRequest("Missing key name")
	}
	if conflicting(c, "cas", "acquire", "release") {
		return endpoint{}, badRequest("Conflicting flags: %v\n", c.Query.Encode())
	}
	flags, bad := parseUint(c, "flags")
	if bad != nil {
		return endpoint{}, bad
	}
	cas, bad := parseUint(c, "cas")
	if bad != nil {
		return endpoint{}, bad
	}
	if len(c.Body) > MaxValueSize {
		r := textReply(http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body(%d bytes) too large, max size: %d bytes. See %s.", len(c.Body), MaxValueSize, kvSizeURL))
		return endpoint{}, &r
	}
	value := c.Body
	if value == nil {
		value = []byte{}
	}
	apply := func(ch *changes) reply {
		idx := m.next()
		var ok, changed bool
		switch {
		case has(c, "cas"):
			_, ok, changed = m.kv.cas(key, value, flags, cas, idx)
		case has(c, "acquire"), has(c, "release"):
			var err error
			if ok, err = m.kvLock(key, value, flags, c, idx); err != nil {
				return textReply(http.StatusInternalServerError, err.Error())
			}
			changed = ok
		default:
			_, changed = m.kv.set(key, value, flags, idx)
			ok = true
		}
		if changed {
			ch.key(key)
		}
		return jsonReply(ok)
	}
	return endpoint{write: true, apply: apply}, nil
}

// kvLock takes (?acquire) or gives back (?release) key's lock for a session.
func (m *Model) kvLock(key string, value []byte, flags uint64, c *Call, idx uint64) (bool, error) {
	if has(c, "release") {
		id := c.Query.Get("release")
		if id == "" {
			return false, fmt.Errorf("missing session")
		}
		_, ok := m.kv.unlock(key, value, flags, id, idx)
		return ok, nil
	}
	id := c.Query.Get("acquire")
	if id == "" {
		return false, fmt.Errorf("missing session")
	}
	if m.sessions.byID[id] == nil {
		return false, fmt.Errorf("invalid session %q", id)
	}
	_, ok := m.kv.lock(key, value, flags, id, idx)
	return ok, nil
}

func (m *Model) kvDelete(c *Call, key string) (endpoint, *reply) {
	if conflicting(c, "recurse", "cas") {
		return endpoint{}, badRequest("Conflicting flags: %v\n", c.Query.Encode())
	}
	if key == "" && !has(c, "recurse") {
		return endpoint{}, badRequest("Missing key name")
	}
	cas, bad := parseUint(c, "cas")
	if bad != nil {
		return endpoint{}, bad
	}
	apply := func(ch *changes) reply {
		idx := m.next()
		switch {
		case has(c, "recurse"):
			for _, k := range m.kv.deleteTree(key, idx) {
				ch.key(k)
			}
		case has(c, "cas"):
			ok, changed := m.kv.deleteCAS(key, cas, idx)
			if changed {
				ch.key(key)
			}
			return jsonReply(ok)
		default:
			if m.kv.remove(key, idx) {
				ch.key(key)
			}
		}
		return jsonReply(true)
	}
	return endpoint{write: true, apply: apply}, nil
}

// Pair is a key's value and indexes, as the operator's side of the model reads them.
type Pair struct {
	Key                      string
	Value                    string
	CreateIndex, ModifyIndex uint64
	Session                  string
}

// Put writes key, as an operator's `consul kv put` would (no gate, no cost counted).
func (m *Model) Put(key, value string) {
	m.mu.Lock()
	var ch changes
	if _, changed := m.kv.set(key, []byte(value), 0, m.next()); changed {
		ch.key(key)
	}
	keys := m.commit(m.next(), &ch)
	m.mu.Unlock()
	m.notify(keys)
}

// Delete deletes key, as an operator's `consul kv delete` would.
func (m *Model) Delete(key string) {
	m.mu.Lock()
	var ch changes
	if m.kv.remove(key, m.next()) {
		ch.key(key)
	}
	keys := m.commit(m.next(), &ch)
	m.mu.Unlock()
	m.notify(keys)
}

// Get reads key: its value and ModifyIndex, and whether it exists.
func (m *Model) Get(key string) (value string, modifyIndex uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.kv.get(key)
	if e == nil {
		return "", 0, false
	}
	return string(e.value), e.modifyIndex, true
}

// Pair reads key with its indexes and session, and whether it exists.
func (m *Model) Pair(key string) (Pair, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.kv.get(key)
	if e == nil {
		return Pair{}, false
	}
	return Pair{Key: e.key, Value: string(e.value), CreateIndex: e.createIndex, ModifyIndex: e.modifyIndex, Session: e.session}, true
}

// List reads the keys under prefix, sorted.
func (m *Model) List(prefix string) []Pair {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries, _ := m.kv.list(prefix)
	out := make([]Pair, len(entries))
	for i, e := range entries {
		out[i] = Pair{Key: e.key, Value: string(e.value), CreateIndex: e.createIndex, ModifyIndex: e.modifyIndex, Session: e.session}
	}
	return out
}
