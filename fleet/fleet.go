// Package fleet is the fleet as rebootmgr sees it: the stop flag, the reboot lock, and for
// every node its request, its disabled mark, its phase and the first gate that blocks it now.
// It is computed from one snapshot of Consul, read with a bounded number of requests (not one
// per node), so that operators can see a fleet of hundreds of nodes at a glance.
package fleet

import (
	"maps"
	"sort"
	"time"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
)

// Snapshot is what Consul holds, read at one moment.
type Snapshot struct {
	At   time.Time
	Stop *Mark
	// Legacy are the Python rebootmgr's holders of no group (lock/.lock held,
	// reboot_in_progress set by it): key -> node, as pipeline.View has them.
	Legacy map[string]string
	// Groups holds each group's lock, limit and stop flag; a group without keys is absent.
	Groups map[string]GroupState
	// Requests and Disabled are the nodes' keys.
	Requests map[string]Mark
	Disabled map[string]Mark
	// Nodes are the nodes in Consul's catalog, with their group ("" for the default one).
	Nodes map[string]string
	// Services are the services tagged rebootmgr, with all their instances.
	Services []Service
	// Members are, for each service, the nodes remembered running it.
	Members map[string][]string
	// Fleet is every holder of every group's lock; FleetError says why it cannot be read.
	Fleet      lock.Fleet
	FleetError string
	// Local is the node this runs on, LocalFiles the reboot-required files that exist there.
	Local      string
	LocalFiles []string
}

// GroupState is what Consul holds for one group.
type GroupState struct {
	Lock lock.Record
	// Limit is how many nodes may hold the group's lock (1 when not set).
	Limit int
	Stop  *Mark
	// Error says why the group's lock or limit cannot be read; then none of its nodes may
	// reboot.
	Error string
	// Legacy are the Python rebootmgr's holders of the group (<group>_lock/.lock,
	// <group>_reboot_in_progress): key -> node.
	Legacy map[string]string
}

// Mark is a key that means something by existing, with its value.
type Mark struct {
	Value string
}

// Service is a service with the tag rebootmgr on at least one node, and all its instances.
type Service struct {
	Name      string
	Instances []health.Instance
}

// Status is the fleet's state.
type Status struct {
	At   time.Time `json:"at"`
	Stop *Stop     `json:"stop"`
	// Limit is the default group's limit.
	Limit int `json:"limit"`
	// Holders are the lock holders of every group.
	Holders []Holder `json:"holders"`
	// LockError says why the default group's lock cannot be read ("" when it can).
	LockError string  `json:"lock_error,omitempty"`
	Groups    []Group `json:"groups"`
	Nodes     []Node  `json:"nodes"`
}

// Group is one group's lock, limit and stop flag.
type Group struct {
	Name    string `json:"name"`
	Limit   int    `json:"limit"`
	Stop    *Stop  `json:"stop"`
	Holders int    `json:"holders"`
	Error   string `json:"error,omitempty"`
	// Python are the Python rebootmgr's holders of the group's lock, key -> node ("" for a
	// session lock); absent when there are none.
	Python map[string]string `json:"python_holders,omitempty"`
}

// Stop is the fleet's stop flag.
type Stop struct {
	Value string `json:"value"`
}

// Holder is a node holding the reboot lock.
type Holder struct {
	Node          string     `json:"node"`
	Group         string     `json:"group"`
	Phase         lock.Phase `json:"phase"`
	Since         time.Time  `json:"since"`
	ForSeconds    int64      `json:"for_seconds"`
	RebootStarted *time.Time `json:"reboot_started,omitempty"`
}

// Node is one node's row.
type Node struct {
	Node  string `json:"node"`
	Group string `json:"group"`
	// RebootRequired says what asks for a reboot: "key", "file" (only known for the local
	// node) or both; empty when nothing does.
	RebootRequired []string `json:"reboot_required"`
	// Disabled is the reason the node is disabled, nil when it is not.
	Disabled *string `json:"disabled"`
	// Phase is the node's phase in the lock, "" when it holds none.
	Phase lock.Phase `json:"phase,omitempty"`
	// Blocked is the first gate that keeps the node from rebooting now; nil when none does.
	Blocked *Block `json:"blocked"`
}

// Block is a gate that says no, and why.
type Block struct {
	Gate   string `json:"gate"`
	Reason string `json:"reason"`
}

// The gates, as status names them.
const (
	GateStop     = "stop"
	GateLock     = "lock"
	GateDisabled = "disabled"
	GateHealth   = "health"
)

// group returns the state of a group, with the defaults of one without keys.
func (s Snapshot) group(name string) GroupState {
	g, ok := s.Groups[name]
	if !ok {
		return GroupState{Lock: lock.Record{Version: lock.Version}, Limit: 1}
	}
	return g
}

// Compute derives the fleet's status from a snapshot.
func Compute(s Snapshot) Status {
	def := s.group(store.DefaultGroup)
	st := Status{At: s.At, Limit: def.Limit, LockError: def.Error, Holders: []Holder{}, Groups: []Group{}, Nodes: []Node{}}
	if s.Stop != nil {
		st.Stop = &Stop{Value: s.Stop.Value}
	}
	groups := map[string]bool{store.DefaultGroup: true}
	for g := range s.Groups {
		groups[g] = true
	}
	for _, g := range s.Nodes {
		if g != "" {
			groups[g] = true
		}
	}
	for _, name := range sortedKeys(groups) {
		gs := s.group(name)
		out := Group{Name: name, Limit: gs.Limit, Holders: len(gs.Lock.Holders), Error: gs.Error}
		if py := s.legacy(name); len(py) > 0 {
			out.Python = py
		}
		if gs.Stop != nil {
			out.Stop = &Stop{Value: gs.Stop.Value}
		}
		st.Groups = append(st.Groups, out)
		for _, h := range gs.Lock.Holders {
			hold := Holder{Node: h.Node, Group: name, Phase: h.Phase, Since: h.Since, ForSeconds: int64(s.At.Sub(h.Since).Seconds())}
			if !h.RebootStarted.IsZero() {
				t := h.RebootStarted
				hold.RebootStarted = &t
			}
			st.Holders = append(st.Holders, hold)
		}
	}

	names := map[string]bool{}
	for n := range s.Nodes {
		names[n] = true
	}
	for n := range s.Requests {
		names[n] = true
	}
	for n := range s.Disabled {
		names[n] = true
	}
	for _, h := range st.Holders {
		names[h.Node] = true
	}
	byNode := servicesByNode(s.Services, s.Members)
	for _, name := range sortedKeys(names) {
		st.Nodes = append(st.Nodes, node(s, name, byNode[name]))
	}
	return st
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// InFlight is every node whose reboot is under way, except self, with why, as the pipeline
// of a node of group counts them.
func (s Snapshot) InFlight(self, group string) map[string]string {
	locks := map[string]lock.Record{}
	for name, g := range s.Groups {
		locks[name] = g.Lock
	}
	return pipeline.InFlight(self, s.Fleet, locks, s.legacy(group))
}

// legacy are the Python rebootmgr's holders that hold group's lock: those of no group, and
// the group's own, as store.View reads them for a node of group.
func (s Snapshot) legacy(group string) map[string]string {
	out := maps.Clone(s.Legacy)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, s.group(group).Legacy)
	return out
}

// groupOf is the group a node belongs to: its catalog meta, else the group whose lock it
// holds (a node Consul no longer knows), else the default.
func (s Snapshot) groupOf(node string) string {
	if g := s.Nodes[node]; g != "" {
		return g
	}
	for name, g := range s.Groups {
		if _, ok := g.Lock.Holder(node); ok {
			return name
		}
	}
	return store.DefaultGroup
}

func node(s Snapshot, name string, services []health.Service) Node {
	group := s.groupOf(name)
	n := Node{Node: name, Group: group, RebootRequired: []string{}}
	if _, ok := s.Requests[name]; ok {
		n.RebootRequired = append(n.RebootRequired, "key")
	}
	if name == s.Local && len(s.LocalFiles) > 0 {
		n.RebootRequired = append(n.RebootRequired, "file")
	}
	if m, ok := s.Disabled[name]; ok {
		reason := m.Value
		n.Disabled = &reason
	}
	g := s.group(group)
	h, holds := g.Lock.Holder(name)
	if holds {
		n.Phase = h.Phase
	}
	n.Blocked = firstBlock(s, g, group, name, holds, n.Disabled, services)
	return n
}

// firstBlock is the first gate, in the pipeline's order, that keeps node from rebooting now.
func firstBlock(s Snapshot, g GroupState, group, name string, holds bool, disabled *string, services []health.Service) *Block {
	if s.Stop != nil {
		return &Block{Gate: GateStop, Reason: "stop flag is set"}
	}
	if g.Stop != nil {
		return &Block{Gate: GateStop, Reason: "group " + group + " stop flag is set"}
	}
	if g.Error != "" {
		return &Block{Gate: GateLock, Reason: g.Error}
	}
	if holds {
		return nil
	}
	if disabled != nil {
		return &Block{Gate: GateDisabled, Reason: *disabled}
	}
	if s.FleetError != "" {
		return &Block{Gate: GateLock, Reason: s.FleetError}
	}
	if rep := health.Evaluate(name, services, s.InFlight(name, group)); !rep.OK() {
		return &Block{Gate: GateHealth, Reason: rep.Reason()}
	}
	if legacy := s.legacy(group); len(legacy) > 0 {
		return &Block{Gate: GateLock, Reason: legacyReason(legacy)}
	}
	if _, err := g.Lock.Acquire(lock.Holder{Node: name}, g.Limit); err != nil {
		return &Block{Gate: GateLock, Reason: "group " + group + ": " + err.Error()}
	}
	return nil
}

// servicesByNode groups, for each node, the services it runs with the tag rebootmgr, with all
// their instances and the tags of that node's instance.
func servicesByNode(services []Service, members map[string][]string) map[string][]health.Service {
	out := map[string][]health.Service{}
	for _, svc := range services {
		tagsOf := map[string][]string{}
		for _, inst := range svc.Instances {
			if t, ok := health.AddTags(tagsOf[inst.Node], inst.Tags); ok {
				tagsOf[inst.Node] = t
			}
		}
		for node, tags := range tagsOf {
			out[node] = append(out[node], health.Service{Name: svc.Name, Tags: tags, Instances: svc.Instances, Members: members[svc.Name]})
		}
	}
	return out
}
