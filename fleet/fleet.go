// Package fleet is the fleet as rebootmgr sees it: the stop flag, the reboot lock, and for
// every node its request, its disabled mark, its phase and the first gate that blocks it now.
// It is computed from one snapshot of Consul, read with a bounded number of requests (not one
// per node), so that operators can see a fleet of hundreds of nodes at a glance.
package fleet

import (
	"maps"
	"sort"
	"time"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// Snapshot is what Consul holds, read at one moment.
type Snapshot struct {
	At   time.Time
	Stop *Mark
	// Legacy are the Python rebootmgr's holders of no group (lock/.lock held,
	// reboot_in_progress set by it): key -> node, as place.View has them.
	Legacy map[string]string
	// Groups holds each group's lock, limit and stop flag; a group without keys is absent.
	Groups map[string]GroupState
	// Requests and Disabled are the nodes' keys.
	Requests map[string]Mark
	Disabled map[string]Mark
	// Python are the nodes with a Python rebootmgr config (nodes/<node>/config), with the group
	// it names ("" for none).
	Python map[string]string
	// Nodes are the nodes in Consul's catalog, with their group ("" for the default one), and
	// Zones the zones of those that name one.
	Nodes map[string]string
	Zones map[string]string
	// Services are the services tagged rebootmgr, with all their instances.
	Services []Service
	// Members are, for each service, the nodes remembered running it.
	Members map[string][]string
	// Fleet is every holder of every group's lock; FleetError says why it or the claims
	// cannot be read.
	Fleet      lock.Fleet
	FleetError string
	// Claims are the nodes waiting for room that go first (see lock.Claims).
	Claims lock.Claims
	// Local is the node this runs on, LocalFiles the reboot-required files that exist there,
	// LocalState what only that node knows of itself (nil when not known).
	Local      string
	LocalFiles []string
	LocalState *Local
	// Daemons are the nodes' daemons as their service in Consul shows them; Maintenance the
	// nodes in maintenance, with the reason.
	Daemons     map[string]Daemon
	Maintenance map[string]string
	// Alerts are the alerts the alerts gate reads, from the source the reader was told of (not
	// Consul's: the zero value, no source, when none).
	Alerts gate.AlertsFound

	// sizes counts the nodes of each group in Nodes, once Compute counted them (nil: count
	// them at each ask), so that judging every node is not as slow as the fleet squared.
	sizes map[string]int
}

// Local is what only the node status or check runs on knows of itself: the settings its daemon
// judges by (from its configuration), its boot id and whether the reboot command ran on that
// boot, its tasks, and its reboot-required files that exist, with their write times.
type Local struct {
	Settings  Settings
	Files     []gate.File
	BootID    string
	RebootRan bool
	Tasks     map[string]int
	TasksErr  error
}

// GroupState is what Consul holds for one group.
type GroupState struct {
	Lock lock.Record
	// Limit is how many nodes may hold the group's lock (lock.One when not set).
	Limit lock.Limit
	Stop  *Mark
	// Error says why the group's lock or limit cannot be read; then none of its nodes may
	// reboot.
	Error string
	// Queue is the order in which the group's nodes asked for its lock.
	Queue lock.Queue
	// History is the group's record of reboots; HistoryError says why it cannot be read.
	History      history.Log
	HistoryError string
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
	// Limit is how many nodes of the default group may reboot at once (see Group).
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
	Name string `json:"name"`
	// Limit is how many nodes may hold the group's lock at once (0 under auto: the quorum rules
	// decide); LimitSpec the limit as set ("3", "auto", "10%", "... per-zone=1").
	Limit     int    `json:"limit"`
	LimitSpec string `json:"limit_spec"`
	Stop      *Stop  `json:"stop"`
	Holders   int    `json:"holders"`
	Error     string `json:"error,omitempty"`
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
	// FleetLock says that a FleetLock request took the place: Node is the host's id.
	FleetLock bool `json:"fleetlock,omitempty"`
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
	// InCatalog says whether Consul's catalog lists the node; a node it does not know is never
	// ready to reboot.
	InCatalog bool `json:"in_catalog"`
	// Daemon is the node's daemon as Consul shows it; nil when none ever registered there.
	Daemon *DaemonRow `json:"daemon"`
	// Maintenance is the reason the node is in maintenance, nil when it is not.
	Maintenance *string `json:"maintenance"`
	// NextWindow is when the node's reboot window next opens, when it is closed now.
	NextWindow *time.Time `json:"next_window,omitempty"`
	// Operator says that the node waits for an operator, and what resolves it; nil when not.
	Operator *Attention `json:"operator"`
	// Queue is the node's place in its group's queue; nil when it waits in none.
	Queue *QueueRow `json:"queue,omitempty"`
	// Alone says why the node reboots only alone, nobody beside it (see Alone); "" when it
	// does not.
	Alone string `json:"alone,omitempty"`
	// FleetLock says that the row's place in the lock is a FleetLock host's (Phase is that
	// host's); with Daemon set, that host is another machine than the node, which waits.
	FleetLock bool `json:"fleetlock,omitempty"`
	// Python, for a node with a Python rebootmgr config and no group Consul gives it otherwise
	// (node meta, a place held), is the group the Python rebootmgr's keys give it: its
	// config's, or that of a Python lock it holds; "unknown" when neither names one (a --group
	// on its command line is not in Consul: the row counts it in the default group).
	Python string `json:"python_group,omitempty"`
}

// QueueRow is a node's place in its group's queue.
type QueueRow struct {
	// Place counts from 1, among every node of the queue; Ahead is how many of those before it
	// may go now (not blocked by their own gates).
	Place int       `json:"place"`
	Ahead int       `json:"ahead"`
	Since time.Time `json:"since"`
	// Blocked is the gate of its own that holds it ("" when only the lock does).
	Blocked string `json:"blocked,omitempty"`
	// Estimate is when it may start, from how long the group's last reboots took; absent
	// without a finished reboot in its history.
	Estimate *time.Time `json:"estimate,omitempty"`
}

// DaemonRow is a node's daemon.
type DaemonRow struct {
	// State is "running", "waiting for an operator" or "down" (stopped, or not heard of
	// within its check's TTL).
	State   string `json:"state"`
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
	Enabled bool   `json:"enabled"`
}

// Attention is why a node waits for an operator, and the command that resolves it.
type Attention struct {
	Reason  string `json:"reason"`
	Command string `json:"command"`
}

// Block is a gate that says no, and why: Reason in a few words (status's), Evidence whole, the
// lines check prints for the gate (see gate.Verdict).
type Block struct {
	Gate     string   `json:"gate"`
	Reason   string   `json:"reason"`
	Evidence []string `json:"evidence,omitempty"`
}

// group returns the state of a group, with the defaults of one without keys.
func (s Snapshot) group(name string) GroupState {
	g, ok := s.Groups[name]
	if !ok {
		return GroupState{Lock: lock.Record{Version: lock.Version}, Limit: lock.One}
	}
	return g
}

// Compute derives the fleet's status from a snapshot.
func Compute(s Snapshot) Status {
	s.sizes = map[string]int{}
	for _, g := range s.Nodes {
		if g == "" {
			g = lock.DefaultGroup
		}
		s.sizes[g]++
	}
	def := s.group(lock.DefaultGroup)
	st := Status{At: s.At, Limit: places(def.Limit, s.groupNodes(lock.DefaultGroup)), LockError: def.Error, Holders: []Holder{}, Groups: []Group{}, Nodes: []Node{}}
	if s.Stop != nil {
		st.Stop = &Stop{Value: s.Stop.Value}
	}
	groups := map[string]bool{lock.DefaultGroup: true}
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
		out := Group{Name: name, Limit: places(gs.Limit, s.groupNodes(name)), LimitSpec: gs.Limit.String(), Holders: len(gs.Lock.Holders), Error: gs.Error}
		if py := s.legacy(name); len(py) > 0 {
			out.Python = py
		}
		if gs.Stop != nil {
			out.Stop = &Stop{Value: gs.Stop.Value}
		}
		st.Groups = append(st.Groups, out)
		for _, h := range gs.Lock.Holders {
			hold := Holder{Node: h.Node, Group: name, Phase: h.Phase, Since: h.Since, ForSeconds: int64(s.At.Sub(h.Since).Seconds()), FleetLock: h.FleetLock()}
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
	// A node gone from the catalog keeps its row while its services remember it (until
	// rebootmgr forget): they count it as failing.
	for _, nodes := range s.Members {
		for _, n := range nodes {
			names[n] = true
		}
	}
	byNode := servicesByNode(s.Services, s.Members)
	ruleLess := s.ruleLess(byNode)
	for _, name := range sortedKeys(names) {
		st.Nodes = append(st.Nodes, node(s, name, byNode[name], ruleLess))
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

// groupNodes is how many nodes of group Consul's catalog lists.
func (s Snapshot) groupNodes(group string) int {
	if s.sizes != nil {
		return s.sizes[group]
	}
	n := 0
	for _, g := range s.Nodes {
		if g == group || (g == "" && group == lock.DefaultGroup) {
			n++
		}
	}
	return n
}

// places is how many nodes l lets hold a lock at once in a group of n nodes, 0 under auto.
func places(l lock.Limit, n int) int {
	if l.Auto {
		return 0
	}
	return l.Places(n, true)
}

// InFlight is every node whose reboot is under way, except self, with why, as the pipeline
// of a node of group counts them.
func (s Snapshot) InFlight(self, group string) map[string]string {
	locks := map[string]lock.Record{}
	for name, g := range s.Groups {
		locks[name] = g.Lock
	}
	return place.InFlight(self, s.Fleet, locks, s.legacy(group))
}

// legacy are the Python rebootmgr's holders that hold group's lock: those of no group, and
// the group's own, as the store's View reads them for a node of group.
func (s Snapshot) legacy(group string) map[string]string {
	out := maps.Clone(s.Legacy)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, s.group(group).Legacy)
	return out
}
