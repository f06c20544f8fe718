package consulmodel

import (
	"net/http"
	"net/url"
)

// answers keeps the last answer of each read of a service's health, as it was encoded, until
// the catalog changes: a fleet whose nodes share one service reads it, thousands of instances,
// many times between two changes of the catalog.
type answers struct {
	// gen counts the changes of the catalog (see changes.ofCatalog).
	gen   uint64
	cache map[string]cachedAnswer
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
