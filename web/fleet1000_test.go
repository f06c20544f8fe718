package web

import (
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
)

// bigGroups are the groups of bigFleet, the default one first.
var bigGroups = []string{lock.DefaultGroup, "compute", "storage", "edge"}

// bigFleet is a fleet of n nodes in the middle of a roll, as a snapshot of Consul holds it:
// every node in the catalog with its daemon running, in one of four groups; in each group two
// nodes hold a place (one rebooting, one preparing), a tenth of the nodes waits in the queue,
// a few are disabled, and each group's history holds a day of reboots, one of which failed. A
// service tagged rebootmgr runs on every node, one instance of it failing.
func bigFleet(n int, at time.Time) fleet.Snapshot {
	s := fleet.Snapshot{
		At: at, Groups: map[string]fleet.GroupState{}, Requests: map[string]fleet.Mark{}, Disabled: map[string]fleet.Mark{},
		Nodes: map[string]string{}, Daemons: map[string]fleet.Daemon{}, Members: map[string][]string{},
	}
	svc := fleet.Service{Name: "app"}
	perGroup := map[string][]string{}
	for i := range n {
		name := fmt.Sprintf("node-%04d", i)
		g := bigGroups[i%len(bigGroups)]
		perGroup[g] = append(perGroup[g], name)
		s.Nodes[name] = g
		if g == lock.DefaultGroup {
			s.Nodes[name] = ""
		}
		s.Daemons[name] = fleet.Daemon{State: fleet.DaemonRunning, Status: "idle: no reboot required", Settings: fleet.Settings{Version: "0.2.0", Enabled: true}}
		status := "passing"
		if i == 7 {
			status = "critical"
		}
		svc.Instances = append(svc.Instances, health.Instance{Node: name, ServiceID: "app", Tags: []string{health.Tag, "max_failing=20"},
			Checks: []health.Check{{Node: name, CheckID: "service:app", Status: status}}})
		if i%97 == 5 {
			s.Disabled[name] = fleet.Mark{Value: "disk swap (by alice on ctl1)"}
		}
	}
	s.Services = []fleet.Service{svc}
	for _, g := range bigGroups {
		s.Groups[g] = bigGroup(&s, perGroup[g], at)
	}
	return s
}

// bigGroup is the state of a group of nodes in the middle of a roll (see bigFleet); the nodes
// that ask for a reboot go into s.Requests.
func bigGroup(s *fleet.Snapshot, nodes []string, at time.Time) fleet.GroupState {
	limit := lock.Limit{N: 2}
	g := fleet.GroupState{Lock: lock.Record{Version: lock.Version}, Limit: limit, History: history.Log{Version: 1}}
	for i, node := range nodes[:2] {
		phase := []lock.Phase{lock.Rebooting, lock.Preparing}[i]
		since := at.Add(-time.Duration(i+2) * time.Minute)
		g.Lock.Holders = append(g.Lock.Holders, lock.Holder{Node: node, Phase: phase, Since: since, RebootStarted: since, TriggeredBy: "key reboot_required"})
		s.Requests[node] = fleet.Mark{Value: "kernel 6.1.0-28"}
	}
	for i, node := range nodes[2 : 2+len(nodes)/10] {
		g.Queue = g.Queue.Join(node, at.Add(-time.Duration(60-i)*time.Second))
		s.Requests[node] = fleet.Mark{Value: "kernel 6.1.0-28"}
	}
	done := nodes[2+len(nodes)/10:]
	for i, node := range done[:min(len(done), 60)] {
		start := at.Add(-time.Duration(60-i) * 20 * time.Minute)
		e := history.Entry{Node: node, Start: start, End: start.Add(6 * time.Minute), Outcome: history.Finished, TriggeredBy: "key reboot_required"}
		if i == 3 {
			e.Outcome, e.Detail = history.TaskFailed, "pre_boot_tasks/10-drain: exit 1"
		}
		g.History = g.History.Append(e)
	}
	return g
}
