package fleet

import (
	"github.com/rebootmgr/rebootmgr/tasks"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/window"
)

// TestEveryGateBlocksAndIsKnown walks the list of gates (gate.List): each that can hold a node
// back does so in a state made for it, is the first blocking gate there (what status shows),
// ends as the list says it ends (its exit code, metric label and daemon status come from that
// ending), and the status table names it. A gate added to the list without a state here fails
// the test.
func TestEveryGateBlocksAndIsKnown(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	closed, err := window.Parse(now.Add(12*time.Hour).Format("Mon 15:04") + "-" + now.Add(12*time.Hour+time.Minute).Format("15:04") + " UTC")
	if err != nil {
		t.Fatal(err)
	}
	finishedNow := history.Log{Version: 1}.Append(history.Entry{Node: "n1", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished})
	failing := health.Service{Name: "galera", Tags: []string{health.Tag}, Instances: []health.Instance{{Node: "n1", ServiceID: "galera", Checks: []health.Check{{Node: "n1", CheckID: "c", Status: "critical"}}}}}
	states := map[string]func(*NodeState){
		gate.Stop: func(s *NodeState) { s.Stop = &Mark{Value: "freeze"} },
		gate.Rebooted: func(s *NodeState) {
			s.Lock = holding(lock.Holder{Node: "n1", Phase: lock.Rebooting, BootID: "b1"})
			s.BootID, s.RebootRan = "b1", true
		},
		gate.Disabled: func(s *NodeState) { s.Disabled = &Mark{Value: "disk swap"} },
		gate.Window:   func(s *NodeState) { s.Schedule = window.Schedule{Windows: []window.Window{closed}} },
		gate.Interval: func(s *NodeState) { s.MinRebootInterval, s.History = time.Hour, finishedNow },
		gate.Health:   func(s *NodeState) { s.Health = health.Evaluate("n1", []health.Service{failing}, nil) },
		gate.Alerts: func(s *NodeState) {
			s.Alerts = gate.AlertsFound{Source: "http://prometheus:9090", Firing: []alerts.Alert{{Name: "DiskFull"}}}
		},
		gate.Tasks:    func(s *NodeState) { s.TasksErr = &testError{"tasks directory is writable by others"} },
		gate.Lock:     func(s *NodeState) { s.Lock = holding(lock.Holder{Node: "n7", Phase: lock.Preparing, Since: now}) },
		gate.Cooldown: func(s *NodeState) { s.Cooldown, s.History = time.Hour, finishedNow },
	}
	// A trigger only says whether the daemon acts at all; stay green holds a node back only
	// over time, as the pipeline watches health (judged at one moment, it is the health gate).
	sayOnly := map[string]bool{gate.Trigger: true, gate.StayGreen: true}
	for _, g := range gate.List() {
		t.Run(g.Name, func(t *testing.T) {
			set, ok := states[g.Name]
			switch {
			case sayOnly[g.Name] && ok:
				t.Fatalf("gate %q says only, and has a state that holds a node back", g.Name)
			case sayOnly[g.Name]:
				return
			case !ok:
				t.Fatalf("gate %q has no state that makes it hold a node back", g.Name)
			}
			s := NodeState{Node: "n1", Group: "default", Limit: lock.One, Lock: lock.Record{Version: lock.Version}, Now: now, Tasks: map[string]int{}}
			set(&s)
			v := gate.First(Gates(s))
			if v == nil || v.Gate != g.Name {
				t.Fatalf("first blocking gate %+v, want %s", v, g.Name)
			}
			if got := ending.Sentinel(v.Err); got != g.Ends {
				t.Fatalf("gate %s ends with %v (ending %v), the list says %v", g.Name, v.Err, got, g.Ends)
			}
			row := now2(Node{Node: "n1", Group: "default", InCatalog: true, Blocked: &Block{Gate: v.Gate, Reason: v.Err.Error()}})
			if !strings.Contains(row, "blocked by "+g.Name) {
				t.Fatalf("the status table says %q", row)
			}
		})
	}
}

func holding(h lock.Holder) lock.Record {
	r, _ := lock.Record{Version: lock.Version}.Acquire(h, 1)
	return r
}

func now2(n Node) string { return now(n, func(_, s string) string { return s }) }

type testError struct{ s string }

func (e *testError) Error() string { return e.s }

// TestOverdueWaitsForAnOperatorUntilResumed: a holder past its deadline waits for an operator
// while its miss is unreported or its group stopped; once reported and resumed, it finishes by
// itself and status no longer asks for anyone.
func TestOverdueWaitsForAnOperatorUntilResumed(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	h := lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: now.Add(-time.Hour), RebootStarted: now.Add(-time.Hour), Deadline: now.Add(-30 * time.Minute)}
	reported := history.Log{Version: 1}.Append(history.Entry{Node: "n1", Start: h.RebootStarted, End: now.Add(-29 * time.Minute), Outcome: history.DeadlinePassed})
	for _, tt := range []struct {
		name    string
		stopped bool
		l       history.Log
		waits   bool
	}{
		{"not reported yet", false, history.Log{Version: 1}, true},
		{"reported, group stopped", true, reported, true},
		{"reported, resumed", false, reported, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := GroupState{Lock: holding(h), Limit: lock.One, History: tt.l}
			if tt.stopped {
				g.Stop = &Mark{Value: "n1 did not finish"}
			}
			s := Snapshot{At: now, Groups: map[string]GroupState{"default": g}, Nodes: map[string]string{"n1": ""}}
			n := node(s, "n1", nil, nil)
			if (n.Operator != nil) != tt.waits {
				t.Fatalf("operator %+v, want waiting %v", n.Operator, tt.waits)
			}
			if tt.waits && !strings.Contains(n.Operator.Command, "rebootmgr resume") {
				t.Fatalf("command %q", n.Operator.Command)
			}
		})
	}
}

// TestLockGateYieldsAsThePipeline: check and status judge the claims of room as a daemon does: a
// node of more room leaves a place a node with less room claims, once a reboot that node counted
// ended; a claim whose node has not seen a reboot end, or a node that is itself unhealthy, is
// not held up by it (health says why first).
func TestLockGateYieldsAsThePipeline(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	svc := func(tags ...string) health.Service {
		s := health.Service{Name: "quobyte", Tags: append([]string{health.Tag}, tags...)}
		for _, n := range []string{"n1", "ctl1", "h1", "h2"} {
			s.Instances = append(s.Instances, health.Instance{Node: n, ServiceID: "quobyte", Checks: []health.Check{{Node: n, CheckID: "c", Status: "passing"}}})
		}
		return s
	}
	claim := lock.Claim{Node: "ctl1", AtOnce: 1, Services: []string{"quobyte"}, Seen: []string{"h1", "h2"}, Judged: now, Until: now.Add(10 * time.Minute)}
	for _, tt := range []struct {
		name     string
		inFlight []string
		yields   bool
	}{
		{"a reboot the claimant counted ended", []string{"h2"}, true},
		{"none ended", []string{"h1", "h2"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var fleet lock.Fleet
			rec := lock.Record{Version: lock.Version}
			for _, n := range tt.inFlight {
				fleet = fleet.With(n, "default")
				rec.Holders = append(rec.Holders, lock.Holder{Node: n, Phase: lock.Rebooting, Since: now})
			}
			down := place.InFlight("n1", fleet, map[string]lock.Record{"default": rec}, nil)
			s := NodeState{Node: "n1", Group: "default", Limit: lock.Limit{Auto: true}, Lock: rec, Fleet: fleet, Now: now, Tasks: map[string]int{},
				Claims: lock.Claims{Version: lock.Version, Claims: []lock.Claim{claim}}, Health: health.Evaluate("n1", []health.Service{svc("max_failing=2")}, down)}
			v := gate.First(Gates(s))
			if yields := v != nil && v.Gate == gate.Lock && strings.Contains(v.Err.Error(), "ctl1 waits for room in quobyte"); yields != tt.yields {
				t.Fatalf("first blocking gate %+v: yields %v, want %v", v, yields, tt.yields)
			}
		})
	}
}

// TestTaskPhaseNames: the phases fleet counts the tasks of are named as package tasks names
// them.
func TestTaskPhaseNames(t *testing.T) {
	if preBoot != tasks.Pre || postBoot != tasks.Post {
		t.Fatalf("fleet's phases %q and %q, tasks' %q and %q", preBoot, postBoot, tasks.Pre, tasks.Post)
	}
}
