package consulmodel

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
)

// answers keeps the last answer of each read of a service's health, as it was encoded, until
// the catalog changes: a fleet whose nodes share one service reads it, thousands of instances,
// many times between two changes of the catalog.
type answers struct {
	// gen counts the changes of the catalog (see changes.ofCatalog).
	gen   uint64
	cache map[string]cachedAnswer
	// entries are the instances' entries of those answers, by node and service ID.
	entries map[string]cachedEntry
}

type cachedAnswer struct {
	gen  uint64
	body []byte
}

// ofCatalog says whether c changed the catalog, health or sessions.
func (c *changes) ofCatalog() bool {
	return c.catalog || len(c.nodes) > 0 || len(c.services) > 0 || len(c.checks) > 0
}

// answerKey is what names a read's answer: its path and the query, less what only says when to
// answer (?index, ?wait).
func answerKey(c *Call) string {
	q := url.Values{}
	for k, v := range c.Query {
		if k != "index" && k != "wait" {
			q[k] = v
		}
	}
	return c.Path + "?" + q.Encode()
}

// cached is the body of the last answer to key, encoded again by encode when the catalog
// changed since (m.mu held).
func (a *answers) cached(key string, encode func() reply) reply {
	if e, ok := a.cache[key]; ok && e.gen == a.gen {
		return reply{status: http.StatusOK, body: e.body}
	}
	r := encode()
	if r.status != http.StatusOK {
		return r
	}
	if a.cache == nil {
		a.cache = map[string]cachedAnswer{}
	}
	a.cache[key] = cachedAnswer{gen: a.gen, body: r.body}
	return r
}

// entryStamp is what an instance's entry of /v1/health/service is made of: its node, its
// service and the checks of both, each as it was (every change of them makes a new one or
// gives it a new modify index).
type entryStamp struct {
	node         *cnode
	nodeIndex    uint64
	meta         map[string]string
	service      *cservice
	serviceIndex uint64
	checks       []*ccheck
	checkIndexes []uint64
}

func (a entryStamp) same(b entryStamp) bool {
	return a.node == b.node && a.nodeIndex == b.nodeIndex && a.service == b.service && a.serviceIndex == b.serviceIndex &&
		sameMap(a.meta, b.meta) && slices.Equal(a.checks, b.checks) && slices.Equal(a.checkIndexes, b.checkIndexes)
}

// sameMap says whether a and b are the same map (not merely equal ones).
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

type cachedEntry struct {
	stamp entryStamp
	body  []byte
}

// entryJSON is the encoded entry of service s on node n with its checks (those of the node and
// s's), kept until one of them changes: a change of the catalog changes one instance's entry,
// and the answer is the others' as they were (m.mu held).
func (a *answers) entryJSON(n *cnode, s *cservice, checks []*ccheck) ([]byte, error) {
	stamp := entryStamp{node: n, nodeIndex: n.modifyIndex, meta: n.meta, service: s, serviceIndex: s.modifyIndex, checks: checks}
	for _, c := range checks {
		stamp.checkIndexes = append(stamp.checkIndexes, c.modifyIndex)
	}
	key := n.name + "\x00" + s.id
	if e, ok := a.entries[key]; ok && e.stamp.same(stamp) {
		return e.body, nil
	}
	e := &serviceEntry{Node: apiNode(n), Service: agentService(s), Checks: []*checkJSON{}}
	for _, chk := range checks {
		e.Checks = append(e.Checks, healthCheck(n, chk))
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if a.entries == nil {
		a.entries = map[string]cachedEntry{}
	}
	a.entries[key] = cachedEntry{stamp: stamp, body: body}
	return body, nil
}
