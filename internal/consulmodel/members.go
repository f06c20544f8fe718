package consulmodel

import (
	"fmt"
	"net/http"

	"github.com/hashicorp/consul/api"
)

// Serf's member statuses, as /v1/agent/members gives them.
const (
	memberAlive  = 1
	memberLeft   = 3
	memberFailed = 4
)

// agentMembers answers GET /v1/agent/members: every node that ever joined, as the local agent's
// gossip sees it: alive, failed (its serfHealth critical: its agent was killed, or its machine
// is down), or left (it left the catalog cleanly). Consul keeps a left or failed member for
// days before it reaps it; the model keeps it. Sorted by name, with the fields a member's
// status is read by.
func (m *Model) agentMembers() reply {
	out := make([]*api.AgentMember, 0, len(m.cat.nodes))
	for _, name := range sortedKeys(m.cat.nodes) {
		n := m.cat.nodes[name]
		status := memberAlive
		switch chk := n.checks[serfCheck]; {
		case !n.registered:
			status = memberLeft
		case chk != nil && chk.status == api.HealthCritical:
			status = memberFailed
		}
		out = append(out, &api.AgentMember{Name: n.name, Addr: address, Port: 8301, Status: status,
			Tags: map[string]string{"dc": datacenter, "role": "node", "segment": "", "id": n.id}})
	}
	return jsonReply(out)
}

// Expire ends a session whose TTL ran out without a renewal, as Consul's servers do (at twice
// the TTL after the last renewal): its locks are released (or its keys deleted, with behavior
// "delete"). The model keeps no clock of its own, so whoever runs it says when; a session
// already ended is left so. It returns whether the session was still there.
func (m *Model) Expire(id string) bool {
	var ended bool
	m.catalogChange(func(idx uint64, ch *changes) {
		if s := m.sessions.byID[id]; s != nil {
			m.endSession(s, idx, ch)
			ended = true
		}
	})
	return ended
}

// memberRoute is agentRoute's GET /v1/agent/members (?wan and ?segment are not modelled).
func (m *Model) memberRoute(c *Call) (endpoint, *reply) {
	if c.Query.Has("wan") {
		r := textReply(http.StatusNotImplemented, fmt.Sprintf("the model has no WAN members (%s)", c.Path))
		return endpoint{}, &r
	}
	return endpoint{read: func() reply { return m.agentMembers() }}, nil
}
