package consulmodel

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"
)

// outputMaxSize is Consul's check_output_max_size: a longer output is cut.
const outputMaxSize = 4096

func agentCheck(n *cnode, c *ccheck) *api.AgentCheck {
	h := healthCheck(n, c)
	return &api.AgentCheck{Node: h.Node, CheckID: h.CheckID, Name: h.Name, Status: h.Status, Notes: h.Notes, Output: h.Output,
		ServiceID: h.ServiceID, ServiceName: h.ServiceName, Type: h.Type}
}

// agentRoute serves the local agent's endpoints of node c.Node: self, services, members, checks
// (?filter), maintenance, service register and deregister, check update (TTL), leave. The
// agent keeps its state while its node is out of the catalog; serfHealth is the servers', not
// the agent's, so it is not among the agent's checks.
func (m *Model) agentRoute(c *Call, rest string) (endpoint, *reply) {
	op, arg, _ := strings.Cut(rest, "/")
	if c.Method == http.MethodGet {
		switch op {
		case "self":
			return endpoint{read: func() reply { return m.agentSelf(c.Node) }}, nil
		case "services":
			return endpoint{read: func() reply {
				out := map[string]*api.AgentService{}
				if n := m.cat.nodes[c.Node]; n != nil {
					for id, s := range n.services {
						out[id] = agentService(s)
					}
				}
				return jsonReply(out)
			}}, nil
		case "members":
			return m.memberRoute(c)
		case "checks":
			fl, err := parseFilter(c.Query.Get("filter"), checkFields(emptyNode, &ccheck{}))
			return endpoint{read: func() reply { return m.agentChecks(c.Node, fl, err) }}, nil
		}
		r := textReply(http.StatusNotFound, "")
		return endpoint{}, &r
	}
	if c.Method != http.MethodPut {
		return endpoint{}, nil
	}
	switch op {
	case "maintenance":
		return m.agentMaintenance(c)
	case "service":
		sub, id, _ := strings.Cut(arg, "/")
		if sub == "register" {
			return m.agentRegister(c)
		}
		if sub == "deregister" {
			return endpoint{write: true, apply: func(ch *changes) reply {
				n := m.cat.nodes[c.Node]
				if n == nil || !m.cat.removeService(n, id, m.next(), ch) {
					return textReply(http.StatusNotFound, fmt.Sprintf("Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id))
				}
				return reply{status: http.StatusOK}
			}}, nil
		}
	case "check":
		return m.agentCheckUpdate(c, arg)
	case "leave":
		return endpoint{write: true, apply: func(ch *changes) reply {
			if n := m.cat.nodes[c.Node]; n != nil {
				idx := m.next()
				m.cat.leave(n, idx, ch)
				m.endSessionsOf(c.Node, idx, ch)
			}
			return reply{status: http.StatusOK}
		}}, nil
	}
	r := textReply(http.StatusNotFound, "")
	return endpoint{}, &r
}

func (m *Model) agentSelf(node string) reply {
	meta := map[string]string{}
	if n := m.cat.nodes[node]; n != nil {
		meta = maps.Clone(n.meta)
	}
	return jsonReply(map[string]any{
		"Config": map[string]any{"Datacenter": datacenter, "NodeName": node, "NodeID": nodeID(node), "Server": false, "Version": "1.20.1"},
		"Member": map[string]any{"Name": node, "Addr": address, "Port": 8301, "Status": 1},
		"Meta":   meta,
	})
}

// agentChecks answers /v1/agent/checks: a filter Consul cannot read fails (500) only when
// there is a check to filter, as Consul's does.
func (m *Model) agentChecks(node string, fl filter, bad error) reply {
	out := map[string]*api.AgentCheck{}
	if n := m.cat.nodes[node]; n != nil {
		for id, chk := range n.checks {
			if id == serfCheck {
				continue
			}
			if bad != nil {
				return textReply(http.StatusInternalServerError, bad.Error())
			}
			if fl(checkFields(n, chk)) {
				out[id] = agentCheck(n, chk)
			}
		}
	}
	return jsonReply(out)
}

// agentMaintenance is PUT /v1/agent/maintenance?enable=&reason=: a critical _node_maintenance
// check whose notes are the reason. Enabling it when it is on keeps the reason it has.
func (m *Model) agentMaintenance(c *Call) (endpoint, *reply) {
	if !has(c, "enable") {
		return endpoint{}, badRequest("Missing value for enable")
	}
	enable, err := strconv.ParseBool(c.Query.Get("enable"))
	if err != nil {
		return endpoint{}, badRequest("Invalid value for enable: %q", c.Query.Get("enable"))
	}
	reason := c.Query.Get("reason")
	if reason == "" {
		reason = defaultMaintReason
	}
	return endpoint{write: true, apply: func(ch *changes) reply {
		n := m.cat.node(c.Node)
		switch {
		case !enable:
			m.cat.removeCheck(n, maintCheck, m.next(), ch)
		case n.checks[maintCheck] == nil:
			m.cat.setCheck(n, &ccheck{id: maintCheck, name: "Node Maintenance Mode", notes: reason, status: api.HealthCritical, typ: "maintenance"}, m.next(), ch)
		}
		return reply{status: http.StatusOK}
	}}, nil
}

func checkType(c *api.AgentServiceCheck) string {
	switch {
	case c.TTL != "":
		return "ttl"
	case len(c.Args) > 0:
		return "script"
	case c.HTTP != "":
		return "http"
	case c.TCP != "":
		return "tcp"
	case c.GRPC != "":
		return "grpc"
	}
	return ""
}

// agentRegister is PUT /v1/agent/service/register: the service and its checks (each in its
// initial status, critical unless given); ?replace-existing-checks drops the service's other
// checks. The model runs no check: a script's or HTTP check's status is what the simulator sets.
func (m *Model) agentRegister(c *Call) (endpoint, *reply) {
	var reg api.AgentServiceRegistration
	if err := json.Unmarshal(c.Body, &reg); err != nil {
		return endpoint{}, badRequest("Request decode failed: %v", err)
	}
	if reg.Name == "" {
		return endpoint{}, badRequest("Missing service name")
	}
	if reg.ID == "" {
		reg.ID = reg.Name
	}
	defs := append(api.AgentServiceChecks(nil), reg.Checks...)
	if reg.Check != nil {
		defs = append(api.AgentServiceChecks{reg.Check}, defs...)
	}
	replace := c.Query.Get("replace-existing-checks") == "true"
	return endpoint{write: true, apply: func(ch *changes) reply {
		idx := m.next()
		n := m.cat.node(c.Node)
		s := &cservice{id: reg.ID, name: reg.Name, tags: append([]string(nil), reg.Tags...), port: reg.Port, meta: maps.Clone(reg.Meta)}
		if s.meta == nil {
			s.meta = map[string]string{}
		}
		m.cat.setService(n, s, idx, ch)
		keep := map[string]bool{}
		for i, d := range defs {
			id := d.CheckID
			if id == "" {
				id = "service:" + reg.ID
				if len(defs) > 1 {
					id += ":" + strconv.Itoa(i+1)
				}
			}
			name := d.Name
			if name == "" {
				name = "Service '" + reg.Name + "' check"
			}
			status := d.Status
			if status == "" {
				status = api.HealthCritical
			}
			keep[id] = true
			m.cat.setCheck(n, &ccheck{id: id, name: name, serviceID: reg.ID, status: status, notes: d.Notes, typ: checkType(d),
				interval: d.Interval, timeout: d.Timeout}, idx, ch)
		}
		if replace {
			for _, id := range sortedKeys(n.checks) {
				if n.checks[id].serviceID == reg.ID && !keep[id] {
					m.cat.removeCheck(n, id, idx, ch)
				}
			}
		}
		return reply{status: http.StatusOK}
	}}, nil
}

// agentCheckUpdate is PUT /v1/agent/check/update/ID (body: Status, Output) and the older
// /v1/agent/check/pass|warn|fail/ID?note=, for a TTL check.
func (m *Model) agentCheckUpdate(c *Call, arg string) (endpoint, *reply) {
	verb, id, _ := strings.Cut(arg, "/")
	var status, output string
	switch verb {
	case "update":
		var body struct{ Status, Output string }
		if err := json.Unmarshal(c.Body, &body); err != nil {
			return endpoint{}, badRequest("Request decode failed: %v", err)
		}
		status, output = body.Status, body.Output
	case "pass", "warn", "fail":
		status = map[string]string{"pass": api.HealthPassing, "warn": api.HealthWarning, "fail": api.HealthCritical}[verb]
		output = c.Query.Get("note")
	default:
		r := textReply(http.StatusNotFound, "")
		return endpoint{}, &r
	}
	switch status {
	case api.HealthPassing, api.HealthWarning, api.HealthCritical:
	default:
		return endpoint{}, badRequest("Invalid check status: '%s'", status)
	}
	if len(output) > outputMaxSize {
		output = fmt.Sprintf("%s ... (captured %d of %d bytes)", output[:outputMaxSize], outputMaxSize, len(output))
	}
	return endpoint{write: true, apply: func(ch *changes) reply {
		n := m.cat.nodes[c.Node]
		var prev *ccheck
		if n != nil {
			prev = n.checks[id]
		}
		switch {
		case prev == nil || id == serfCheck:
			return textReply(http.StatusNotFound, fmt.Sprintf("Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id))
		case prev.typ != "ttl":
			return textReply(http.StatusInternalServerError, fmt.Sprintf("CheckID %q does not have associated TTL", id))
		}
		next := *prev
		next.status, next.output = status, output
		m.cat.setCheck(n, &next, m.next(), ch)
		return reply{status: http.StatusOK}
	}}, nil
}
