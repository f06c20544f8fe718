// Package fleet is the fleet as rebootmgr sees it: the stop flag, the reboot lock, and for
// every node its request, its disabled mark, its phase and the first gate that blocks it now.
// It is computed from one snapshot of Consul, read with a bounded number of requests (not one
// per node), so that operators can see a fleet of hundreds of nodes at a glance.
package fleet

import (
	"slices"
	"sort"
	"time"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
)

// Snapshot is what Consul holds, read at one moment.
type Snapshot struct {
	At   time.Time
	Stop *Mark
	Lock lock.Record
	// LockError is set when the lock record cannot be read; then nothing may reboot.
	LockError string
	Limit     int
	// Requests and Disabled are the nodes' keys.
	Requests map[string]Mark
	Disabled map[string]Mark
	// Nodes are the nodes in Consul's catalog.
	Nodes []string
	// Services are the services tagged rebootmgr, with all their instances.
	Services []Service
	// Local is the node this runs on, LocalFiles the reboot-required files that exist there.
	Local      string
	LocalFiles []string
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
	At      time.Time `json:"at"`
	Stop    *Stop     `json:"stop"`
	Limit   int       `json:"limit"`
	Holders []Holder  `json:"holders"`
	// LockError says why the lock record cannot be read ("" when it can).
	LockError string `json:"lock_error,omitempty"`
	Nodes     []Node `json:"nodes"`
}

// Stop is the fleet's stop flag.
type Stop struct {
	Value string `json:"value"`
}

// Holder is a node holding the reboot lock.
type Holder struct {
	Node          string     `json:"node"`
	Phase         lock.Phase `json:"phase"`
	Since         time.Time  `json:"since"`
	ForSeconds    int64      `json:"for_seconds"`
	RebootStarted *time.Time `json:"reboot_started,omitempty"`
}

// Node is one node's row.
type Node struct {
	Node string `json:"node"`
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

// Compute derives the fleet's status from a snapshot.
func Compute(s Snapshot) Status {
	st := Status{At: s.At, Limit: s.Limit, LockError: s.LockError, Holders: []Holder{}, Nodes: []Node{}}
	if s.Stop != nil {
		st.Stop = &Stop{Value: s.Stop.Value}
	}
	for _, h := range s.Lock.Holders {
		out := Holder{Node: h.Node, Phase: h.Phase, Since: h.Since, ForSeconds: int64(s.At.Sub(h.Since).Seconds())}
		if !h.RebootStarted.IsZero() {
			t := h.RebootStarted
			out.RebootStarted = &t
		}
		st.Holders = append(st.Holders, out)
	}

	names := map[string]bool{}
	for _, n := range s.Nodes {
		names[n] = true
	}
	for n := range s.Requests {
		names[n] = true
	}
	for n := range s.Disabled {
		names[n] = true
	}
	for _, h := range s.Lock.Holders {
		names[h.Node] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	byNode := servicesByNode(s.Services)
	for _, name := range sorted {
		st.Nodes = append(st.Nodes, node(s, name, byNode[name]))
	}
	return st
}

func node(s Snapshot, name string, services []health.Service) Node {
	n := Node{Node: name, RebootRequired: []string{}}
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
	h, holds := s.Lock.Holder(name)
	if holds {
		n.Phase = h.Phase
	}
	n.Blocked = firstBlock(s, name, holds, n.Disabled, services)
	return n
}

// firstBlock is the first gate, in the pipeline's order, that keeps node from rebooting now.
func firstBlock(s Snapshot, name string, holds bool, disabled *string, services []health.Service) *Block {
	if s.Stop != nil {
		return &Block{Gate: GateStop, Reason: "stop flag is set"}
	}
	if s.LockError != "" {
		return &Block{Gate: GateLock, Reason: s.LockError}
	}
	if holds {
		return nil
	}
	if disabled != nil {
		return &Block{Gate: GateDisabled, Reason: *disabled}
	}
	if rep := health.Evaluate(name, services); !rep.OK() {
		return &Block{Gate: GateHealth, Reason: rep.Reason()}
	}
	if _, err := s.Lock.Acquire(lock.Holder{Node: name}, s.Limit); err != nil {
		return &Block{Gate: GateLock, Reason: err.Error()}
	}
	return nil
}

// servicesByNode groups, for each node, the services it runs with the tag rebootmgr, with all
// their instances and the tags of that node's instance.
func servicesByNode(services []Service) map[string][]health.Service {
	out := map[string][]health.Service{}
	for _, svc := range services {
		tagsOf := map[string][]string{}
		for _, inst := range svc.Instances {
			if !slices.Contains(inst.Tags, health.Tag) {
				continue
			}
			for _, t := range inst.Tags {
				if !slices.Contains(tagsOf[inst.Node], t) {
					tagsOf[inst.Node] = append(tagsOf[inst.Node], t)
				}
			}
		}
		for node, tags := range tagsOf {
			out[node] = append(out[node], health.Service{Name: svc.Name, Tags: tags, Instances: svc.Instances})
		}
	}
	return out
}
