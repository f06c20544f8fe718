// Package consulmodel is an in-memory model of the part of Consul's HTTP API that rebootmgr
// uses: the KV store with its indexes, check-and-set and transactions, blocking queries, the
// catalog and health checks, each agent's services, checks and maintenance, and sessions with
// their locks. Model.Client gives a github.com/hashicorp/consul/api client that speaks to it
// without a network: every request is answered from memory in the caller's goroutine, and
// nothing observable depends on the wall clock or on map order, so that a simulator driving
// many clients from one seeded scheduler sees the same run for the same seed.
//
// Semantics follow Consul 1.20; where the model knowingly differs, the doc comment of the
// endpoint says so.
package consulmodel

import (
	"sort"
	"sync"
	"time"
)

// Model is Consul's state: KV with indexes, the catalog, health checks, each agent's services,
// checks and maintenance, and sessions. It is safe for concurrent use.
type Model struct {
	// After makes the timer of a blocking query's wait (time.After when nil). Set it before
	// the first request.
	After func(time.Duration) <-chan time.Time
	// OnWrite, when set, is called after every change of state with the KV keys changed,
	// sorted, and "" for a change of the catalog, health or sessions; it is called without the
	// model's lock held, in the goroutine that made the change. Set it before the first
	// request.
	OnWrite func(keys []string)

	mu       sync.Mutex
	index    uint64 // the last index given to a change (Raft's, as it were)
	kv       kvStore
	cat      catalog
	sessions sessionTable
	waits    waitRegistry
	answers  answers
	stats    map[string]*NodeStats
	// requests counts every request, as the stats do node by node.
	requests uint64
}

// New is an empty model: no keys, no nodes.
func New() *Model {
	m := &Model{stats: map[string]*NodeStats{}}
	m.kv.init()
	m.cat.init()
	m.sessions.init()
	m.waits.init()
	return m
}

// Index is the last index given to a change of the model's state.
func (m *Model) Index() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.index
}

// HealthIndex is the index a read of service's health (/v1/health/service/NAME) would carry
// now. It is no request: a simulator that stands in for a blocking query asks it whether the
// query would return.
func (m *Model) HealthIndex(service string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cat.serviceIndex(service, true)
}

// NodeIndex is the index a read of a node's catalog entry (/v1/catalog/node/NODE) would carry
// now (the nodes' and services' tables'); no request, as HealthIndex.
func (m *Model) NodeIndex() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.cat.nodesIdx, m.cat.servicesIdx, 1)
}

// next is the index the next change is given (m.mu held); commit makes it the model's.
func (m *Model) next() uint64 { return m.index + 1 }

// changes collects what one request or operator action changed, to wake the blocking queries
// it concerns and to tell OnWrite.
type changes struct {
	keys     []string
	catalog  bool
	nodes    []string // nodes whose catalog entry (node, services) changed
	services []string // services whose health or instances changed
	checks   []string // nodes whose checks changed
}

func (c *changes) any() bool { return len(c.keys) > 0 || c.catalog }

func (c *changes) key(k string) { c.keys = append(c.keys, k) }

// commit gives the changes the index idx, wakes the blocking queries they concern (m.mu held)
// and returns what to tell OnWrite (nil: nothing changed).
func (m *Model) commit(idx uint64, c *changes) []string {
	if !c.any() {
		return nil
	}
	if idx > m.index {
		m.index = idx
	}
	if c.ofCatalog() {
		m.answers.gen++
	}
	m.waits.wake(c)
	keys := dedupSorted(c.keys)
	if c.catalog {
		keys = append([]string{""}, keys...)
	}
	return keys
}

// notify tells OnWrite of a change (m.mu not held).
func (m *Model) notify(keys []string) {
	if keys != nil && m.OnWrite != nil {
		m.OnWrite(keys)
	}
}

func dedupSorted(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || s != out[n-1] {
			out[n] = s
			n++
		}
	}
	return out[:n]
}

// NodeStats is what the requests made through one node's client would have cost.
type NodeStats struct {
	Node string
	// Requests is every request, refused or not; Refused those the gate refused.
	Requests, Refused uint64
	// Writes are the requests answered that change state (whether or not their
	// check-and-set held).
	Writes uint64
	// BytesIn and BytesOut are the sizes of the requests' and the answers' bodies.
	BytesIn, BytesOut uint64
}

// Stats is the cost of the requests made through every client, per node (sorted by node) and
// in total.
type Stats struct {
	Total NodeStats
	Nodes []NodeStats
}

// Stats reports the cost of the requests made so far.
func (m *Model) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Stats
	for _, ns := range m.stats {
		s.Nodes = append(s.Nodes, *ns)
		s.Total.Requests += ns.Requests
		s.Total.Refused += ns.Refused
		s.Total.Writes += ns.Writes
		s.Total.BytesIn += ns.BytesIn
		s.Total.BytesOut += ns.BytesOut
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Node < s.Nodes[j].Node })
	return s
}

// Requests is how many requests were made through every client: Stats().Total.Requests,
// without going through every node's.
func (m *Model) Requests() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests
}

// count adds one request's cost to node's (m.mu held).
func (m *Model) count(node string, in, out int, write, refused bool) {
	m.requests++
	ns := m.stats[node]
	if ns == nil {
		ns = &NodeStats{Node: node}
		m.stats[node] = ns
	}
	ns.Requests++
	ns.BytesIn += uint64(in)
	ns.BytesOut += uint64(out)
	if refused {
		ns.Refused++
	} else if write {
		ns.Writes++
	}
}
