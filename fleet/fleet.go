// Package fleet is the fleet as rebootmgr sees it: the stop flag, the reboot lock, and for
// every node its request, its disabled mark, its phase and the first gate that blocks it now.
// It is computed from one snapshot of Consul, read with a bounded number of requests (not one
// per node), so that operators can see a fleet of hundreds of nodes at a glance.
package fleet

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
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
}

// Local is what only the node status or check runs on knows of itself: the settings its daemon
// judges by (from its configuration), its boot id and whether the reboot command ran on that
// boot, and its tasks.
type Local struct {
	Settings  Settings
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

// Block is a gate that says no, and why.
type Block struct {
	Gate   string `json:"gate"`
	Reason string `json:"reason"`
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
	return pipeline.InFlight(self, s.Fleet, locks, s.legacy(group))
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

// groupOf is the group a node belongs to: its catalog meta, else the group whose lock it
// holds (a node Consul no longer knows), else the group the Python rebootmgr's keys give it
// (see pythonGroupOf), else the default.
func (s Snapshot) groupOf(node string) string {
	if g := s.Nodes[node]; g != "" {
		return g
	}
	for name, g := range s.Groups {
		if _, ok := g.Lock.Holder(node); ok {
			return name
		}
	}
	if g := s.pythonGroupOf(node); g != "" {
		return g
	}
	return lock.DefaultGroup
}

func node(s Snapshot, name string, services []health.Service, ruleLess map[string]bool) Node {
	group := s.groupOf(name)
	_, known := s.Nodes[name]
	n := Node{Node: name, Group: group, RebootRequired: []string{}, InCatalog: known}
	if _, py := s.Python[name]; py && s.Nodes[name] == "" {
		if n.Python = s.pythonGroupOf(name); n.Python == "" {
			n.Python = PythonGroupUnknown
		}
	}
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
	if reason, ok := s.Maintenance[name]; ok {
		n.Maintenance = &reason
	}
	st := s.NodeState(name, services)
	if h, holds := st.Lock.Holder(name); holds {
		n.Phase, n.FleetLock = h.Phase, h.FleetLock()
	} else if st.Limit.Auto {
		for _, h := range st.Lock.Holders {
			if ruleLess[h.Node] {
				st.RuleLess = append(st.RuleLess, h.Node)
			}
		}
	}
	d, hasDaemon := s.Daemons[name]
	if hasDaemon {
		n.Daemon = &DaemonRow{State: d.State.String(), Status: d.Status, Version: d.Settings.Version, Enabled: d.Settings.Enabled}
	}
	verdicts := Gates(st)
	if v := Blocking(verdicts); v != nil {
		reason := v.Err.Error()
		if g := pipeline.Gate(v.Err); g != nil {
			reason = strings.TrimPrefix(reason, g.Error()+": ")
		}
		n.Blocked = &Block{Gate: v.Gate, Reason: reason}
		if v.Gate == GateWindow {
			if next := st.Schedule.Next(st.Now); !next.IsZero() {
				n.NextWindow = &next
			}
		}
	}
	n.Operator = attention(s, st, d, hasDaemon)
	n.Queue = queueRow(s, st)
	n.Alone = Alone(st)
	return n
}

// queueRow is node's place in its group's queue, with an estimate of when it starts: the nodes
// that may go before it, in rounds as wide as the group's limit (under auto, as many as hold
// places now), each round as long as the mean of the group's last finished reboots.
func queueRow(s Snapshot, st NodeState) *QueueRow {
	i, ok := st.Queue.Place(st.Node)
	if !ok {
		return nil
	}
	e := st.Queue.Entries[i]
	row := &QueueRow{Place: i + 1, Since: e.Since, Blocked: e.Blocked}
	for _, o := range st.Queue.Entries[:i] {
		if o.Blocked == "" {
			row.Ahead++
		}
	}
	var took time.Duration
	n := 0
	for j := len(st.History.Entries) - 1; j >= 0 && n < 10; j-- {
		if h := st.History.Entries[j]; h.Outcome == history.Finished && h.End.After(h.Start) {
			took += h.Duration()
			n++
		}
	}
	if n == 0 {
		return row
	}
	width := places(st.Limit, st.GroupNodes)
	if width == 0 {
		width = max(1, len(st.Lock.Holders))
	}
	rounds := (row.Ahead + len(st.Lock.Holders)) / width
	at := s.At.Add(time.Duration(rounds) * (took / time.Duration(n)))
	row.Estimate = &at
	return row
}

// NodeState is what the gates of node read, from the snapshot: services are the services it
// runs with the tag rebootmgr (see servicesByNode). The settings are those its daemon
// published, else (for the node the snapshot was taken on) its own configuration.
func (s Snapshot) NodeState(name string, services []health.Service) NodeState {
	group := s.groupOf(name)
	g := s.group(group)
	st := NodeState{
		Node: name, Group: group, Lock: g.Lock, Limit: g.Limit, GroupNodes: s.groupNodes(group), Zone: s.Zones[name], Zones: s.Zones, Queue: g.Queue, Legacy: s.legacy(group),
		Fleet: s.Fleet, Claims: s.Claims,
		Now: s.At, History: g.History, TasksUnknown: true,
	}
	_, st.Daemon = s.Daemons[name]
	switch {
	case s.Stop != nil:
		st.Stop = s.Stop
	case g.Stop != nil:
		st.Stop = &Mark{Value: "group " + group + ": " + g.Stop.Value}
	}
	switch {
	case g.Error != "":
		st.LockError = g.Error
	case s.FleetError != "":
		st.LockError = s.FleetError
	case g.HistoryError != "":
		st.LockError = g.HistoryError
	}
	if m, ok := s.Disabled[name]; ok {
		st.Disabled = &m
	}
	var requested []string
	if _, ok := s.Requests[name]; ok {
		requested = append(requested, "key")
		st.Request = pipeline.Request{Why: "key reboot_required"}
	}
	var settings *Settings
	if d, ok := s.Daemons[name]; ok && d.SettingsError == "" {
		settings = &d.Settings
	} else if ok {
		st.SettingsError = d.SettingsError
	}
	if name == s.Local {
		for i, f := range s.LocalFiles {
			requested = append(requested, "file "+f)
			if i == 0 {
				// The pipeline looks at the files first.
				st.Request = pipeline.Request{Why: "file " + f}
			}
		}
		if l := s.LocalState; l != nil {
			st.BootID, st.RebootRan, st.Tasks, st.TasksErr, st.TasksUnknown = l.BootID, l.RebootRan, l.Tasks, l.TasksErr, false
			if settings == nil {
				settings = &l.Settings
			}
		}
	}
	st.Requested = strings.Join(requested, ", ")
	if settings != nil {
		sch, err := settings.Schedule(name)
		if err != nil {
			st.SettingsError = err.Error()
		}
		st.Schedule, st.Cooldown, st.StayGreen, st.MinRebootInterval = sch, settings.Cooldown, settings.StayGreen, settings.MinRebootInterval
	} else if st.SettingsError == "" {
		st.SettingsError = Unpublished(name)
	}
	st.Health = health.Evaluate(name, services, s.InFlight(name, group))
	return st
}

// attention says why a node waits for an operator, if it does: its daemon says so, it is past
// its reboot deadline, or a failed task disabled it.
func attention(s Snapshot, st NodeState, d Daemon, hasDaemon bool) *Attention {
	if h, holds := st.Lock.Holder(st.Node); holds && !h.Deadline.IsZero() && s.At.After(h.Deadline) {
		// Past its deadline, it waits for an operator until one has resumed the group: its miss
		// is reported once (see pipeline.Unreported), and then it finishes by itself.
		if st.Stop != nil || len(pipeline.Unreported([]lock.Holder{h}, st.History)) > 0 {
			return &Attention{
				Reason:  fmt.Sprintf("did not finish its reboot by its deadline %s (phase %s)", h.Deadline.UTC().Format(time.RFC3339), h.Phase),
				Command: pipeline.ResolveOverdue(st.Node, st.Group),
			}
		}
	}
	if hasDaemon && d.State == DaemonNeedsOperator {
		reason, command, _ := strings.Cut(d.Status, pipeline.ResolveSep)
		return &Attention{Reason: reason, Command: command}
	}
	if st.Disabled != nil && pipeline.DisabledByTask(st.Disabled.Value) {
		reason := "disabled after a failed task: " + st.Disabled.Value
		return &Attention{Reason: reason, Command: pipeline.ResolveDisabledByTask(st.Node)}
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
