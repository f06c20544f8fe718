package consulmodel

import (
	"hash/fnv"
	"maps"
	"slices"

	"github.com/hashicorp/consul/api"
)

// Consul's names of the checks the model keeps itself.
const (
	serfCheck  = "serfHealth"
	maintCheck = api.NodeMaint // "_node_maintenance"
	// defaultMaintReason is the reason Consul gives a maintenance enabled without one.
	defaultMaintReason = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
)

// cnode is a node: its agent's state (services, checks, maintenance), kept while it is away,
// and whether it is in the catalog.
type cnode struct {
	name, id                 string
	meta                     map[string]string
	registered               bool
	createIndex, modifyIndex uint64
	services                 map[string]*cservice
	checks                   map[string]*ccheck
}

type cservice struct {
	id, name                 string
	tags                     []string
	port                     int
	meta                     map[string]string
	createIndex, modifyIndex uint64
}

type ccheck struct {
	id, name, serviceID, status, notes, output, typ string
	interval, timeout                               string
	createIndex, modifyIndex                        uint64
}

// catalog is every node, the registered ones' names sorted, and the indexes of Consul's
// catalog tables: nodes, services, checks, and each service's (its instances and their
// health), with the index of the last time a service lost its last instance.
type catalog struct {
	nodes                            map[string]*cnode
	names                            []string
	nodesIdx, servicesIdx, checksIdx uint64
	svcIdx                           map[string]uint64
	extinction                       uint64
	instances                        map[string]map[string]int // service name → node → instances
}

func (c *catalog) init() {
	c.nodes, c.svcIdx, c.instances = map[string]*cnode{}, map[string]uint64{}, map[string]map[string]int{}
}

// nodeID is a node's ID, made from its name (Consul makes one at random).
func nodeID(name string) string {
	h := fnv.New128a()
	h.Write([]byte(name))
	b := h.Sum(nil)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	const hex = "0123456789abcdef"
	var out []byte
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[x>>4], hex[x&0xf])
	}
	return string(out)
}

func sortedServices(n *cnode) []*cservice {
	out := make([]*cservice, 0, len(n.services))
	for _, id := range sortedKeys(n.services) {
		out = append(out, n.services[id])
	}
	return out
}

func sortedChecks(n *cnode) []*ccheck {
	out := make([]*ccheck, 0, len(n.checks))
	for _, id := range sortedKeys(n.checks) {
		out = append(out, n.checks[id])
	}
	return out
}

// touchService records that service's instances or their health changed at idx.
func (c *catalog) touchService(name string, idx uint64, ch *changes) {
	c.svcIdx[name] = idx
	ch.services = append(ch.services, name)
}

// touchNode records that node's entry changed at idx: every service on it too.
func (c *catalog) touchNode(n *cnode, idx uint64, ch *changes) {
	ch.catalog = true
	ch.nodes = append(ch.nodes, n.name)
	for _, id := range sortedKeys(n.services) {
		c.touchService(n.services[id].name, idx, ch)
	}
}

func (c *catalog) addInstance(svc *cservice, node string) {
	if c.instances[svc.name] == nil {
		c.instances[svc.name] = map[string]int{}
	}
	c.instances[svc.name][node]++
}

func (c *catalog) dropInstance(svc *cservice, node string, idx uint64) {
	in := c.instances[svc.name]
	if in[node]--; in[node] <= 0 {
		delete(in, node)
	}
	if len(in) == 0 {
		delete(c.instances, svc.name)
		c.extinction = idx
	}
}

// serviceIndex is the index of a read of service's instances, as Consul's maxIndexForService
// gives it (withChecks: the health endpoints').
func (c *catalog) serviceIndex(name string, withChecks bool) uint64 {
	if len(c.instances[name]) == 0 && c.extinction != 0 {
		return c.extinction
	}
	if idx, ok := c.svcIdx[name]; ok {
		return idx
	}
	if withChecks {
		return max(c.servicesIdx, c.checksIdx, 1)
	}
	return max(c.servicesIdx, 1)
}

// node is the node called name, made (out of the catalog) when it is new.
func (c *catalog) node(name string) *cnode {
	n := c.nodes[name]
	if n == nil {
		n = &cnode{name: name, id: nodeID(name), meta: map[string]string{}, services: map[string]*cservice{}, checks: map[string]*ccheck{}}
		c.nodes[name] = n
	}
	return n
}

// register brings a node's agent into the catalog (again) with meta: its node entry, a passing
// serfHealth, and the services and checks its agent kept.
func (c *catalog) register(name string, meta map[string]string, idx uint64, ch *changes) {
	n := c.node(name)
	newMeta := map[string]string{"consul-network-segment": "", "consul-version": "1.20.1"}
	maps.Copy(newMeta, meta)
	if n.registered && maps.Equal(n.meta, newMeta) {
		c.setCheck(n, &ccheck{id: serfCheck, name: "Serf Health Status", status: api.HealthPassing, output: "Agent alive and reachable"}, idx, ch)
		return
	}
	n.meta = newMeta
	n.modifyIndex = idx
	c.nodesIdx = idx
	if !n.registered {
		n.registered, n.createIndex = true, idx
		c.names = insertSorted(c.names, name)
		for _, s := range n.services {
			s.createIndex, s.modifyIndex = idx, idx
			c.addInstance(s, name)
			c.servicesIdx = idx
		}
		for _, chk := range n.checks {
			chk.createIndex, chk.modifyIndex = idx, idx
			c.checksIdx = idx
		}
		ch.checks = append(ch.checks, name)
	}
	c.touchNode(n, idx, ch)
	c.setCheck(n, &ccheck{id: serfCheck, name: "Serf Health Status", status: api.HealthPassing, output: "Agent alive and reachable"}, idx, ch)
}

// leave takes a node out of the catalog, its services and checks with it; its agent keeps them.
func (c *catalog) leave(n *cnode, idx uint64, ch *changes) {
	if !n.registered {
		return
	}
	c.touchNode(n, idx, ch)
	n.registered = false
	c.names = removeSorted(c.names, n.name)
	c.nodesIdx = idx
	if len(n.services) > 0 {
		c.servicesIdx = idx
	}
	for _, id := range sortedKeys(n.services) {
		c.dropInstance(n.services[id], n.name, idx)
	}
	c.checksIdx = idx
	ch.checks = append(ch.checks, n.name)
}

// setService registers (or replaces) a service of a node's agent.
func (c *catalog) setService(n *cnode, s *cservice, idx uint64, ch *changes) {
	prev := n.services[s.id]
	s.createIndex, s.modifyIndex = idx, idx
	if prev != nil {
		s.createIndex = prev.createIndex
		if n.registered {
			c.dropInstance(prev, n.name, idx)
			if prev.name != s.name {
				c.touchService(prev.name, idx, ch)
			}
		}
	}
	n.services[s.id] = s
	if !n.registered {
		return
	}
	c.addInstance(s, n.name)
	c.servicesIdx = idx
	c.touchService(s.name, idx, ch)
	ch.catalog = true
	ch.nodes = append(ch.nodes, n.name)
}

// removeService deregisters a service of a node's agent, and its checks.
func (c *catalog) removeService(n *cnode, id string, idx uint64, ch *changes) bool {
	s := n.services[id]
	if s == nil {
		return false
	}
	for _, cid := range sortedKeys(n.checks) {
		if n.checks[cid].serviceID == id {
			c.removeCheck(n, cid, idx, ch)
		}
	}
	delete(n.services, id)
	if n.registered {
		c.dropInstance(s, n.name, idx)
		c.servicesIdx = idx
		c.touchService(s.name, idx, ch)
		ch.catalog = true
		ch.nodes = append(ch.nodes, n.name)
	}
	return true
}

// setCheck sets a check of a node's agent; one unchanged changes nothing (Consul's agent syncs
// only a change). The model syncs a changed output at once; Consul's agent waits up to
// check_update_interval (5m) to sync a change of output alone.
func (c *catalog) setCheck(n *cnode, chk *ccheck, idx uint64, ch *changes) {
	prev := n.checks[chk.id]
	if prev != nil {
		if prev.status == chk.status && prev.output == chk.output && prev.notes == chk.notes && prev.serviceID == chk.serviceID && prev.name == chk.name {
			return
		}
		chk.createIndex = prev.createIndex
	} else {
		chk.createIndex = idx
	}
	chk.modifyIndex = idx
	n.checks[chk.id] = chk
	c.checkChanged(n, chk.serviceID, prev, idx, ch)
}

func (c *catalog) removeCheck(n *cnode, id string, idx uint64, ch *changes) bool {
	prev := n.checks[id]
	if prev == nil {
		return false
	}
	delete(n.checks, id)
	c.checkChanged(n, prev.serviceID, prev, idx, ch)
	return true
}

// checkChanged records a change of a check: of its service's health, or of every service on
// the node for a node's check.
func (c *catalog) checkChanged(n *cnode, serviceID string, prev *ccheck, idx uint64, ch *changes) {
	if !n.registered {
		return
	}
	c.checksIdx = idx
	ch.catalog = true
	ch.checks = append(ch.checks, n.name)
	if serviceID == "" {
		for _, id := range sortedKeys(n.services) {
			c.touchService(n.services[id].name, idx, ch)
		}
		return
	}
	if s := n.services[serviceID]; s != nil {
		c.touchService(s.name, idx, ch)
	}
	if prev != nil && prev.serviceID != serviceID {
		if s := n.services[prev.serviceID]; s != nil {
			c.touchService(s.name, idx, ch)
		}
	}
}

// catalogChange runs change under the lock and commits what it changed.
func (m *Model) catalogChange(change func(idx uint64, ch *changes)) {
	m.mu.Lock()
	var ch changes
	idx := m.next()
	change(idx, &ch)
	keys := m.commit(idx, &ch)
	m.mu.Unlock()
	m.notify(keys)
}

// Register brings node's agent into the catalog with its node meta, a passing serfHealth, and
// the services and checks it had before it left: a node joining, or coming back.
func (m *Model) Register(node string, meta map[string]string) {
	m.catalogChange(func(idx uint64, ch *changes) { m.cat.register(node, meta, idx, ch) })
}

// AddService registers a service with node's agent (the node is registered if it was not).
func (m *Model) AddService(node, id, name string, tags []string, port int) {
	m.catalogChange(func(idx uint64, ch *changes) {
		if m.cat.nodes[node] == nil {
			m.cat.register(node, nil, idx, ch)
		}
		s := &cservice{id: id, name: name, tags: slices.Clone(tags), port: port, meta: map[string]string{}}
		m.cat.setService(m.cat.nodes[node], s, idx, ch)
	})
}

// SetCheck sets the status of a check of node (a node's check when serviceID is ""), making
// it (as a TTL check) when it is new.
func (m *Model) SetCheck(node, checkID, serviceID, status string) {
	m.catalogChange(func(idx uint64, ch *changes) {
		if m.cat.nodes[node] == nil {
			m.cat.register(node, nil, idx, ch)
		}
		n := m.cat.nodes[node]
		chk := &ccheck{id: checkID, name: checkID, serviceID: serviceID, status: status, typ: "ttl"}
		if prev := n.checks[checkID]; prev != nil {
			c := *prev
			c.status, c.serviceID = status, serviceID
			chk = &c
		}
		m.cat.setCheck(n, chk, idx, ch)
	})
}

// Leave is a clean leave of node: it, its services and checks leave the catalog (its agent
// keeps them for when it comes back: Register), and its sessions end.
func (m *Model) Leave(node string) {
	m.catalogChange(func(idx uint64, ch *changes) {
		if n := m.cat.nodes[node]; n != nil {
			m.cat.leave(n, idx, ch)
			m.endSessionsOf(node, idx, ch)
		}
	})
}

// Fail is a node whose agent was killed: its serfHealth turns critical, and its sessions end.
func (m *Model) Fail(node string) {
	m.catalogChange(func(idx uint64, ch *changes) {
		n := m.cat.nodes[node]
		if n == nil || !n.registered {
			return
		}
		m.cat.setCheck(n, &ccheck{id: serfCheck, name: "Serf Health Status", status: api.HealthCritical, output: "Agent not live or unreachable"}, idx, ch)
		m.endSessionsOf(node, idx, ch)
	})
}

// Maintenance reports whether node's agent has it in maintenance, and why.
func (m *Model) Maintenance(node string) (reason string, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.cat.nodes[node]; n != nil {
		if c := n.checks[maintCheck]; c != nil {
			return c.notes, true
		}
	}
	return "", false
}

// Nodes is the nodes in the catalog, sorted.
func (m *Model) Nodes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.cat.names)
}
