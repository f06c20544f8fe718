package fleet

import (
	"fmt"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

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
	if v := gate.First(Gates(st)); v != nil && (busy(n) || idleShows[v.Gate]) {
		n.Blocked = &Block{Gate: v.Gate, Reason: v.Why(), Evidence: v.Evidence}
		if v.Gate == gate.Window {
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

// busy says whether anything asks for the node's reboot, or it holds a place: every gate blocks
// something then. An idle node shows only the gates that say something of the node itself
// (idleShows): a window closed, an interval or a cooldown running, a lock held elsewhere block
// nothing while nothing asks.
func busy(n Node) bool { return len(n.RebootRequired) > 0 || n.Phase != "" }

var idleShows = map[string]bool{gate.Stop: true, gate.Rebooted: true, gate.Disabled: true, gate.Health: true, gate.Tasks: true}

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

// attention says why a node waits for an operator, if it does: its daemon says so, it is past
// its reboot deadline, or a failed task disabled it.
func attention(s Snapshot, st NodeState, d Daemon, hasDaemon bool) *Attention {
	if h, holds := st.Lock.Holder(st.Node); holds && !h.Deadline.IsZero() && s.At.After(h.Deadline) {
		// Past its deadline, it waits for an operator until one has resumed the group: its miss
		// is reported once (see place.Unreported), and then it finishes by itself.
		if st.Stop != nil || len(place.Unreported([]lock.Holder{h}, st.History)) > 0 {
			return &Attention{
				Reason:  fmt.Sprintf("did not finish its reboot by its deadline %s (phase %s)", h.Deadline.UTC().Format(time.RFC3339), h.Phase),
				Command: ending.ResolveOverdue(st.Node, st.Group),
			}
		}
	}
	if hasDaemon && d.State == DaemonNeedsOperator {
		reason, command, _ := strings.Cut(d.Status, ending.ResolveSep)
		// The row says it waits for an operator already.
		reason = strings.TrimPrefix(reason, DaemonNeedsOperator.String()+": ")
		return &Attention{Reason: reason, Command: command}
	}
	if st.Disabled != nil && ending.DisabledByTask(st.Disabled.Value) {
		reason := "disabled after a failed task: " + st.Disabled.Value
		return &Attention{Reason: reason, Command: ending.ResolveDisabledByTask(st.Node)}
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
