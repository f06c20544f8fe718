package consulmodel

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// session is a Consul session. The model never expires one by its TTL, and keeps no lock delay
// (both run on the wall clock): a session ends when it is destroyed, or its node leaves or
// fails.
type session struct {
	id, name, node, behavior, ttl string
	lockDelay                     time.Duration
	checks                        []string
	createIndex, modifyIndex      uint64
}

type sessionTable struct {
	byID  map[string]*session
	ids   []string
	seq   uint64
	index uint64
}

func (t *sessionTable) init() { t.byID = map[string]*session{} }

func (s *session) entry() *api.SessionEntry {
	return &api.SessionEntry{ID: s.id, Name: s.name, Node: s.node, LockDelay: s.lockDelay, Behavior: s.behavior, TTL: s.ttl,
		Checks: append([]string(nil), s.checks...), NodeChecks: append([]string(nil), s.checks...), ServiceChecks: nil,
		CreateIndex: s.createIndex}
}

// end destroys a session: the keys it locks are released, or deleted with behavior "delete".
func (m *Model) endSession(s *session, idx uint64, ch *changes) {
	for _, k := range append([]string(nil), m.kv.keys...) {
		if e := m.kv.get(k); e != nil && e.session == s.id && m.kv.release(k, s.id, s.behavior == api.SessionBehaviorDelete, idx) {
			ch.key(k)
		}
	}
	delete(m.sessions.byID, s.id)
	m.sessions.ids = removeSorted(m.sessions.ids, s.id)
	m.sessions.index = idx
	ch.catalog = true
}

// endSessionsOf ends node's sessions (it left, or its serfHealth failed).
func (m *Model) endSessionsOf(node string, idx uint64, ch *changes) {
	for _, id := range append([]string(nil), m.sessions.ids...) {
		if s := m.sessions.byID[id]; s.node == node {
			m.endSession(s, idx, ch)
		}
	}
}

// sessionRequest is a session's creation as the API sends it.
type sessionRequest struct {
	Name, Node, Behavior, TTL string
	LockDelay                 json.RawMessage
	Checks, NodeChecks        []string
}

func lockDelayOf(raw json.RawMessage) time.Duration {
	var ns int64
	if json.Unmarshal(raw, &ns) == nil {
		if ns < int64(time.Second) && ns > 0 {
			return time.Duration(ns) * time.Second
		}
		return time.Duration(ns)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 15 * time.Second
}

// sessionRoute serves /v1/session/: create, destroy, renew, info, node, list.
func (m *Model) sessionRoute(c *Call, rest string) (endpoint, *reply) {
	op, arg, _ := strings.Cut(rest, "/")
	switch {
	case op == "create" && c.Method == http.MethodPut:
		return m.sessionCreate(c)
	case (op == "destroy" || op == "renew") && c.Method == http.MethodPut:
		return endpoint{write: true, apply: func(ch *changes) reply {
			s := m.sessions.byID[arg]
			if op == "renew" {
				if s == nil {
					return textReply(http.StatusNotFound, fmt.Sprintf("Session id '%s' not found", arg))
				}
				return jsonReply([]*api.SessionEntry{s.entry()})
			}
			if s != nil {
				m.endSession(s, m.next(), ch)
			}
			return jsonReply(true)
		}}, nil
	case c.Method != http.MethodGet:
		return endpoint{}, nil
	}
	index := func() uint64 { return max(m.sessions.index, 1) }
	var pick func(*session) bool
	switch op {
	case "info":
		pick = func(s *session) bool { return s.id == arg }
	case "node":
		pick = func(s *session) bool { return s.node == arg }
	case "list":
		pick = func(*session) bool { return true }
	default:
		r := textReply(http.StatusNotFound, "")
		return endpoint{}, &r
	}
	return endpoint{index: index, watch: m.waits.onCatalog(), read: func() reply {
		out := []*api.SessionEntry{}
		for _, id := range m.sessions.ids {
			if s := m.sessions.byID[id]; pick(s) {
				out = append(out, s.entry())
			}
		}
		if op == "info" && len(out) == 0 {
			return jsonReply(nil).withIndex(index())
		}
		return jsonReply(out).withIndex(index())
	}}, nil
}

func (m *Model) sessionCreate(c *Call) (endpoint, *reply) {
	var req sessionRequest
	if len(c.Body) > 0 {
		if err := json.Unmarshal(c.Body, &req); err != nil {
			return endpoint{}, badRequest("Request decode failed: %v", err)
		}
	}
	if req.Node == "" {
		req.Node = c.Node
	}
	if req.Behavior == "" {
		req.Behavior = api.SessionBehaviorRelease
	}
	checks := append(req.Checks, req.NodeChecks...)
	if req.Checks == nil && req.NodeChecks == nil {
		checks = []string{serfCheck}
	}
	return endpoint{write: true, apply: func(ch *changes) reply {
		n := m.cat.nodes[req.Node]
		if n == nil || !n.registered {
			return textReply(http.StatusInternalServerError, "Missing node registration")
		}
		for _, id := range checks {
			chk := n.checks[id]
			if chk == nil {
				return textReply(http.StatusInternalServerError, fmt.Sprintf("Missing check '%s' registration", id))
			}
			if chk.status == api.HealthCritical {
				return textReply(http.StatusInternalServerError, fmt.Sprintf("Check '%s' is in %s state", id, chk.status))
			}
		}
		idx := m.next()
		m.sessions.seq++
		s := &session{id: fmt.Sprintf("00000000-0000-4000-8000-%012x", m.sessions.seq), name: req.Name, node: req.Node,
			behavior: req.Behavior, ttl: req.TTL, lockDelay: lockDelayOf(req.LockDelay), checks: checks, createIndex: idx, modifyIndex: idx}
		m.sessions.byID[s.id] = s
		m.sessions.ids = insertSorted(m.sessions.ids, s.id)
		m.sessions.index = idx
		ch.catalog = true
		return jsonReply(map[string]string{"ID": s.id})
	}}, nil
}
