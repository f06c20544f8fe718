package consulmodel

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

const (
	datacenter = "dc1"
	address    = "127.0.0.1"
)

func apiNode(n *cnode) *api.Node {
	return &api.Node{ID: n.id, Node: n.name, Address: address, Datacenter: datacenter,
		TaggedAddresses: map[string]string{"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address},
		Meta:            maps.Clone(n.meta), CreateIndex: n.createIndex, ModifyIndex: n.modifyIndex}
}

func agentService(s *cservice) *api.AgentService {
	return &api.AgentService{ID: s.id, Service: s.name, Tags: nonNil(s.tags), Meta: maps.Clone(s.meta), Port: s.port,
		Weights: api.AgentWeights{Passing: 1, Warning: 1}, CreateIndex: s.createIndex, ModifyIndex: s.modifyIndex, Datacenter: datacenter}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// checkJSON is a check as Consul's health endpoints give it: with the interval and timeout
// of its definition beside (watch.Instances reads them there).
type checkJSON struct {
	api.HealthCheck
	Interval, Timeout string
}

// serviceEntry is an entry of /v1/health/service.
type serviceEntry struct {
	Node    *api.Node
	Service *api.AgentService
	Checks  []*checkJSON
}

func healthCheck(n *cnode, c *ccheck) *checkJSON {
	h := &checkJSON{HealthCheck: api.HealthCheck{Node: n.name, CheckID: c.id, Name: c.name, Status: c.status, Notes: c.notes, Output: c.output,
		ServiceID: c.serviceID, ServiceTags: []string{}, Type: c.typ, CreateIndex: c.createIndex, ModifyIndex: c.modifyIndex},
		Interval: c.interval, Timeout: c.timeout}
	if s := n.services[c.serviceID]; s != nil {
		h.ServiceName, h.ServiceTags = s.name, nonNil(s.tags)
	}
	return h
}

// nodeFields, serviceFields, checkFields are the selectors of ?filter the model knows.
func nodeFields(n *cnode) fields {
	return func(sel string) ([]string, bool) {
		switch sel {
		case "Node":
			return []string{n.name}, true
		case "ID":
			return []string{n.id}, true
		case "Address":
			return []string{address}, true
		case "Datacenter":
			return []string{datacenter}, true
		}
		return mapField(sel, "Meta", n.meta)
	}
}

func serviceFields(s *cservice) fields {
	return func(sel string) ([]string, bool) {
		switch sel {
		case "ID":
			return []string{s.id}, true
		case "Service":
			return []string{s.name}, true
		case "Tags":
			return s.tags, true
		}
		return mapField(sel, "Meta", s.meta)
	}
}

func checkFields(n *cnode, c *ccheck) fields {
	return func(sel string) ([]string, bool) {
		h := healthCheck(n, c)
		switch sel {
		case "Node":
			return []string{h.Node}, true
		case "CheckID":
			return []string{h.CheckID}, true
		case "Name":
			return []string{h.Name}, true
		case "Status":
			return []string{h.Status}, true
		case "Notes":
			return []string{h.Notes}, true
		case "Output":
			return []string{h.Output}, true
		case "ServiceID":
			return []string{h.ServiceID}, true
		case "ServiceName":
			return []string{h.ServiceName}, true
		case "ServiceTags":
			return h.ServiceTags, true
		case "Type":
			return []string{h.Type}, true
		}
		return nil, false
	}
}

// prefixed reads a selector under prefix ("Node.Meta.x" with "Node") from f.
func prefixed(sel, prefix string, f fields) ([]string, bool) {
	rest, ok := strings.CutPrefix(sel, prefix+".")
	if !ok {
		return nil, false
	}
	return f(rest)
}

// catalogServiceFields are a /v1/catalog/service entry's: the node's, and the service's as
// ServiceX.
func catalogServiceFields(n *cnode, s *cservice) fields {
	return func(sel string) ([]string, bool) {
		if rest, ok := strings.CutPrefix(sel, "Service"); ok && rest != "" {
			if m, ok := strings.CutPrefix(rest, "Meta."); ok {
				return []string{s.meta[m]}, true
			}
			switch rest {
			case "ID", "Tags":
				return serviceFields(s)(rest)
			case "Name":
				return []string{s.name}, true
			}
			return nil, false
		}
		if m, ok := strings.CutPrefix(sel, "NodeMeta."); ok {
			return []string{n.meta[m]}, true
		}
		return nodeFields(n)(sel)
	}
}

// serviceEntryFields are a /v1/health/service entry's: Node.X, Service.X, and Checks.
func serviceEntryFields(n *cnode, s *cservice) fields {
	return func(sel string) ([]string, bool) {
		if v, ok := prefixed(sel, "Node", nodeFields(n)); ok {
			return v, true
		}
		return prefixed(sel, "Service", serviceFields(s))
	}
}

var (
	emptyNode    = &cnode{meta: map[string]string{}, services: map[string]*cservice{}}
	emptyService = &cservice{meta: map[string]string{}}
)

// nodeMetaOK says whether a node has every ?node-meta=k:v asked.
func nodeMetaOK(c *Call, n *cnode) bool {
	for _, kv := range c.Query["node-meta"] {
		k, v, _ := strings.Cut(kv, ":")
		if got, ok := n.meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// catalogRoute serves the catalog's and health's reads the model knows (GET only; the
// catalog's own registration endpoints are not modelled: nodes join through Register and
// their agents).
func (m *Model) catalogRoute(c *Call, p string) (endpoint, *reply) {
	if c.Method != http.MethodGet {
		return endpoint{}, nil
	}
	rest := strings.TrimPrefix(p, "/v1/")
	kind, arg, _ := strings.Cut(rest, "/")
	sub, name, _ := strings.Cut(arg, "/")
	var fl filter
	var err error
	check := func(f fields) {
		if err == nil {
			fl, err = parseFilter(c.Query.Get("filter"), f)
		}
	}
	var ep endpoint
	switch kind + "/" + sub {
	case "catalog/nodes":
		check(nodeFields(emptyNode))
		ep = m.catalogNodes(c, &fl)
	case "catalog/node":
		ep = m.catalogNode(name)
	case "catalog/services":
		ep = m.catalogServices(c)
	case "catalog/service":
		check(catalogServiceFields(emptyNode, emptyService))
		ep = m.catalogService(c, name, &fl)
	case "health/service":
		check(serviceEntryFields(emptyNode, emptyService))
		ep = m.healthService(c, name, &fl)
	case "health/node", "health/state", "health/checks":
		check(checkFields(emptyNode, &ccheck{}))
		ep = m.healthChecks(sub, name, &fl)
	default:
		r := textReply(http.StatusNotFound, "")
		return endpoint{}, &r
	}
	if err != nil {
		r := textReply(http.StatusInternalServerError, err.Error())
		return endpoint{}, &r
	}
	return ep, nil
}

func (m *Model) catalogNodes(c *Call, fl *filter) endpoint {
	index := func() uint64 { return max(m.cat.nodesIdx, 1) }
	return endpoint{index: index, watch: m.waits.onCatalog(), read: func() reply {
		out := []*api.Node{}
		for _, name := range m.cat.names {
			n := m.cat.nodes[name]
			if nodeMetaOK(c, n) && (*fl)(nodeFields(n)) {
				out = append(out, apiNode(n))
			}
		}
		return jsonReply(out).withIndex(index())
	}}
}

// catalogNode is /v1/catalog/node/NODE: null for a node not in the catalog. Its index is the
// nodes' and services' tables' (Consul's), and a blocked query wakes when the node's entry
// changes.
func (m *Model) catalogNode(name string) endpoint {
	index := func() uint64 { return max(m.cat.nodesIdx, m.cat.servicesIdx, 1) }
	return endpoint{index: index, watch: m.waits.onNode(name), read: func() reply {
		n := m.cat.nodes[name]
		if n == nil || !n.registered {
			return jsonReply(nil).withIndex(index())
		}
		out := &api.CatalogNode{Node: apiNode(n), Services: map[string]*api.AgentService{}}
		for id, s := range n.services {
			out.Services[id] = agentService(s)
		}
		return jsonReply(out).withIndex(index())
	}}
}

func (m *Model) catalogServices(c *Call) endpoint {
	index := func() uint64 { return max(m.cat.servicesIdx, 1) }
	return endpoint{index: index, watch: m.waits.onCatalog(), read: func() reply {
		out := map[string][]string{}
		for _, name := range m.cat.names {
			n := m.cat.nodes[name]
			if !nodeMetaOK(c, n) {
				continue
			}
			for _, s := range sortedServices(n) {
				tags := out[s.name]
				if tags == nil {
					tags = []string{}
				}
				for _, t := range s.tags {
					if !slices.Contains(tags, t) {
						tags = append(tags, t)
					}
				}
				out[s.name] = tags
			}
		}
		return jsonReply(out).withIndex(index())
	}}
}

// instances calls f for every instance of service in the catalog, by node and service ID.
func (m *Model) instances(service string, f func(n *cnode, s *cservice)) {
	for _, name := range sortedKeys(m.cat.instances[service]) {
		n := m.cat.nodes[name]
		for _, s := range sortedServices(n) {
			if s.name == service {
				f(n, s)
			}
		}
	}
}

func tagOK(c *Call, s *cservice) bool {
	for _, t := range c.Query["tag"] {
		if !slices.Contains(s.tags, t) {
			return false
		}
	}
	return true
}

func (m *Model) catalogService(c *Call, service string, fl *filter) endpoint {
	index := func() uint64 { return m.cat.serviceIndex(service, false) }
	return endpoint{index: index, watch: m.waits.onService(service), read: func() reply {
		out := []*api.CatalogService{}
		m.instances(service, func(n *cnode, s *cservice) {
			if !nodeMetaOK(c, n) || !tagOK(c, s) || !(*fl)(catalogServiceFields(n, s)) {
				return
			}
			out = append(out, &api.CatalogService{ID: n.id, Node: n.name, Address: address, Datacenter: datacenter,
				TaggedAddresses: map[string]string{"lan": address, "wan": address}, NodeMeta: maps.Clone(n.meta),
				ServiceID: s.id, ServiceName: s.name, ServiceTags: nonNil(s.tags), ServiceMeta: maps.Clone(s.meta), ServicePort: s.port,
				ServiceWeights: api.Weights{Passing: 1, Warning: 1}, CreateIndex: s.createIndex, ModifyIndex: s.modifyIndex})
		})
		return jsonReply(out).withIndex(index())
	}}
}

// healthService is /v1/health/service/NAME (?passing, ?tag, ?node-meta, ?filter): each
// instance with its node's checks and its own, sorted by check ID.
func (m *Model) healthService(c *Call, service string, fl *filter) endpoint {
	passing := has(c, "passing") && c.Query.Get("passing") != "false" && c.Query.Get("passing") != "0"
	index := func() uint64 { return m.cat.serviceIndex(service, true) }
	key := answerKey(c)
	return endpoint{index: index, watch: m.waits.onService(service), read: func() reply {
		return m.answers.cached(key, func() reply { return m.healthEntries(c, service, fl, passing) }).withIndex(index())
	}}
}

// healthEntries encodes the entries of /v1/health/service/NAME.
func (m *Model) healthEntries(c *Call, service string, fl *filter, passing bool) reply {
	// As json.Marshal of the entries: each entry's JSON, between brackets, after commas.
	out := []byte{'['}
	var err error
	m.instances(service, func(n *cnode, s *cservice) {
		if err != nil || !nodeMetaOK(c, n) || !tagOK(c, s) || !(*fl)(serviceEntryFields(n, s)) {
			return
		}
		var checks []*ccheck
		allPassing := true
		for _, chk := range sortedChecks(n) {
			if chk.serviceID == "" || chk.serviceID == s.id {
				checks = append(checks, chk)
				allPassing = allPassing && chk.status == api.HealthPassing
			}
		}
		if passing && !allPassing {
			return
		}
		var e []byte
		if e, err = m.answers.entryJSON(n, s, checks); err != nil {
			return
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, e...)
	})
	if err != nil {
		return textReply(http.StatusInternalServerError, err.Error())
	}
	return reply{status: http.StatusOK, body: append(out, ']')}
}

// healthChecks is /v1/health/node/NODE, /v1/health/state/STATE ("any" for all) and
// /v1/health/checks/SERVICE.
func (m *Model) healthChecks(kind, arg string, fl *filter) endpoint {
	index := func() uint64 { return max(m.cat.checksIdx, 1) }
	if kind == "checks" {
		index = func() uint64 { return m.cat.serviceIndex(arg, true) }
	}
	return endpoint{index: index, watch: m.waits.onCatalog(), read: func() reply {
		out := []*checkJSON{}
		add := func(n *cnode) {
			for _, chk := range sortedChecks(n) {
				ok := true
				switch kind {
				case "state":
					ok = arg == "any" || chk.status == arg
				case "checks":
					s := n.services[chk.serviceID]
					ok = s != nil && s.name == arg
				}
				if ok && (*fl)(checkFields(n, chk)) {
					out = append(out, healthCheck(n, chk))
				}
			}
		}
		if kind == "node" {
			if n := m.cat.nodes[arg]; n != nil && n.registered {
				add(n)
			}
		} else {
			for _, name := range m.cat.names {
				add(m.cat.nodes[name])
			}
		}
		return jsonReply(out).withIndex(index())
	}}
}
