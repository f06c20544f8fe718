package health

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func inst(node, status string, extra ...Check) Instance {
	checks := []Check{{Node: node, CheckID: "serfHealth", Status: "passing"}, {Node: node, CheckID: "service:svc", Status: status, Type: "script", Interval: 10 * time.Second}}
	return Instance{Node: node, ServiceID: "svc", Checks: append(checks, extra...)}
}

func tagged(i Instance, tags ...string) Instance {
	i.Tags = tags
	return i
}

func maint(node string) Check {
	return Check{Node: node, CheckID: NodeMaintenanceCheck, Status: "critical", Output: "rebooting"}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name      string
		tags      []string
		instances []Instance
		ok        bool
		mention   string // a word the reason must contain when not ok
	}{
		{"all passing", nil, []Instance{inst("n1", "passing"), inst("n2", "passing")}, true, ""},
		{"own failing", []string{"min_passing=1"}, []Instance{inst("n1", "critical"), inst("n2", "passing")}, false, "on this node"},
		{"own warning counts as failing", []string{"max_failing=5"}, []Instance{inst("n1", "warning"), inst("n2", "passing")}, false, "warning"},
		{"other failing without quorum tags", nil, []Instance{inst("n1", "passing"), inst("n2", "critical")}, false, "n2"},
		{"other warning without quorum tags", nil, []Instance{inst("n1", "passing"), inst("n2", "warning")}, false, "n2"},
		{"min_passing=2 with two healthy", []string{"min_passing=2"}, []Instance{inst("n1", "passing"), inst("n2", "passing")}, true, ""},
		{"min_passing=2 with one instance", []string{"min_passing=2"}, []Instance{inst("n1", "passing")}, false, "min_passing=2, passing 1/1"},
		{"min_passing=2 with one of three failing", []string{"min_passing=2"}, []Instance{inst("n1", "passing"), inst("n2", "passing"), inst("n3", "critical")}, true, ""},
		{"min_passing=3 with one of three failing", []string{"min_passing=3"}, []Instance{inst("n1", "passing"), inst("n2", "passing"), inst("n3", "critical")}, false, "n3"},
		{"max_failing=1 at the limit", []string{"max_failing=1"}, []Instance{inst("n1", "passing"), inst("n2", "critical"), inst("n3", "passing")}, true, ""},
		{"max_failing=1 over the limit", []string{"max_failing=1"}, []Instance{inst("n1", "passing"), inst("n2", "critical"), inst("n3", "critical")}, false, "max_failing=1, failing 2/3"},
		{"max_failing=0", []string{"max_failing=0"}, []Instance{inst("n1", "passing"), inst("n2", "critical")}, false, "max_failing=0"},
		{"both rules, one broken", []string{"min_passing=1", "max_failing=0"}, []Instance{inst("n1", "passing"), inst("n2", "critical")}, false, "max_failing=0"},
		{"other node in maintenance", nil, []Instance{inst("n1", "passing"), inst("n2", "passing", maint("n2"))}, false, NodeMaintenanceCheck},
		{"other node in maintenance, ignore_maintenance", []string{"ignore_maintenance"}, []Instance{inst("n1", "passing"), tagged(inst("n2", "passing", maint("n2")), Tag, "ignore_maintenance")}, true, ""},
		// Whether a node's maintenance counts is its instance's own word, not this node's.
		{"ignore_maintenance on the instance in maintenance only", nil, []Instance{inst("n1", "passing"), tagged(inst("n2", "passing", maint("n2")), Tag, "ignore_maintenance")}, true, ""},
		{"ignore_maintenance on this node's instance only", []string{"ignore_maintenance"}, []Instance{inst("n1", "passing"), tagged(inst("n2", "passing", maint("n2")), Tag)}, false, NodeMaintenanceCheck},
		{"own maintenance is always ignored", nil, []Instance{inst("n1", "passing", maint("n1")), inst("n2", "passing")}, true, ""},
		{"malformed min_passing", []string{"min_passing=abc"}, []Instance{inst("n1", "passing")}, false, `"min_passing=abc"`},
		{"negative max_failing", []string{"max_failing=-1"}, []Instance{inst("n1", "passing")}, false, `"max_failing=-1"`},
		{"min_passing without value", []string{"min_passing"}, []Instance{inst("n1", "passing")}, false, "min_passing"},
		{"conflicting values", []string{"min_passing=1", "min_passing=2"}, []Instance{inst("n1", "passing")}, false, "twice"},
		{"own instance missing", nil, []Instance{inst("n2", "passing")}, false, "this node's instance"},
		{"local_only: another node failing does not count", []string{"local_only"}, []Instance{inst("n1", "passing"), inst("n2", "critical")}, true, ""},
		{"local_only: this node failing", []string{"local_only"}, []Instance{inst("n1", "critical"), inst("n2", "passing")}, false, "on this node"},
		{"local_only: this node missing", []string{"local_only"}, []Instance{inst("n2", "passing")}, false, "this node's instance"},
		{"local_only with a value", []string{"local_only=yes"}, []Instance{inst("n1", "passing")}, false, "takes no value"},
		{"local_only with a quorum rule", []string{"local_only", "min_passing=2"}, []Instance{inst("n1", "passing")}, false, "quorum"},
		{"unrelated tags ignored", []string{"rebootmgr", "v=2", "primary"}, []Instance{inst("n1", "passing")}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Evaluate("n1", []Service{{Name: "svc", Tags: tt.tags, Instances: tt.instances}}, nil)
			if rep.OK() != tt.ok {
				t.Fatalf("OK() = %v, want %v; problems: %q", rep.OK(), tt.ok, rep.Problems)
			}
			if !tt.ok {
				if !strings.Contains(rep.Reason(), "svc") || !strings.Contains(rep.Reason(), tt.mention) {
					t.Fatalf("reason %q does not name the service and %q", rep.Reason(), tt.mention)
				}
			}
		})
	}
}

func TestSettle(t *testing.T) {
	tests := []struct {
		name   string
		checks []Check
		want   time.Duration
	}{
		{"no timed checks", []Check{{CheckID: "serfHealth", Status: "passing"}}, 0},
		{"interval and timeout", []Check{{Type: "http", Interval: 10 * time.Second, Timeout: 2 * time.Second}}, 12 * time.Second},
		{"script default timeout", []Check{{Type: "script", Interval: 10 * time.Second}}, 40 * time.Second},
		{"http default timeout", []Check{{Type: "http", Interval: 5 * time.Second}}, 15 * time.Second},
		{"longest wins", []Check{{Type: "tcp", Interval: time.Second, Timeout: time.Second}, {Type: "http", Interval: time.Minute, Timeout: 5 * time.Second}}, 65 * time.Second},
		{"ttl", []Check{{Type: "ttl", TTL: 30 * time.Second}}, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.checks {
				tt.checks[i].Status = "passing"
			}
			rep := Evaluate("n1", []Service{{Name: "svc", Instances: []Instance{{Node: "n1", Checks: tt.checks}}}}, nil)
			if rep.Settle != tt.want {
				t.Fatalf("Settle = %v, want %v", rep.Settle, tt.want)
			}
		})
	}
}

// TestInFlightAndMissing: a node whose reboot is in flight, and a remembered member gone from
// the catalog, are failing instances whatever their checks say; this node itself never is.
func TestInFlightAndMissing(t *testing.T) {
	two := []Instance{inst("n1", "passing"), inst("n2", "passing")}
	three := append(append([]Instance(nil), two...), inst("n3", "passing"))
	tests := []struct {
		name      string
		tags      []string
		instances []Instance
		members   []string
		down      map[string]string
		ok        bool
		mention   string
		room      bool // fails only for the reboots in flight
	}{
		{"max_failing=0, another in flight", []string{"max_failing=0"}, two, nil, map[string]string{"n2": "holds the lock"}, false, "reboot in flight: holds the lock", true},
		{"max_failing=1, another in flight", []string{"max_failing=1"}, three, nil, map[string]string{"n2": "x"}, true, "", false},
		{"max_failing=1, two in flight", []string{"max_failing=1"}, three, nil, map[string]string{"n2": "x", "n3": "y"}, false, "failing 2/3", true},
		{"min_passing=2 of 2, the other in flight", []string{"min_passing=2"}, two, nil, map[string]string{"n2": "x"}, false, "passing 1/2", true},
		{"no quorum tag, another in flight", nil, two, nil, map[string]string{"n2": "x"}, false, "every instance must pass", true},
		{"this node in the set does not count", []string{"max_failing=0"}, two, nil, map[string]string{"n1": "x"}, true, "", false},
		{"a node in flight that does not run the service", []string{"max_failing=0"}, two, nil, map[string]string{"n9": "x"}, true, "", false},
		{"local_only ignores others in flight", []string{"local_only"}, two, nil, map[string]string{"n2": "x"}, true, "", false},
		{"member gone, max_failing=0", []string{"max_failing=0"}, two, []string{"n1", "n2", "n3"}, nil, false, "rebootmgr forget n3 svc", false},
		{"member gone, no quorum tag", nil, two, []string{"n3"}, nil, false, "gone from Consul's catalog", false},
		{"member gone, min_passing=2 still met", []string{"min_passing=2"}, two, []string{"n3"}, nil, true, "", false},
		{"members all present", []string{"max_failing=0"}, two, []string{"n1", "n2"}, nil, true, "", false},
		{"member gone and in flight counts once", []string{"max_failing=1"}, two, []string{"n3"}, map[string]string{"n3": "x"}, true, "", false},
		{"local_only ignores missing members", []string{"local_only"}, two, []string{"n3"}, nil, true, "", false},
		{"in flight beside a member gone the rule allows: room", []string{"max_failing=1"}, three, []string{"n4"}, map[string]string{"n2": "x"}, false, "failing 2/4", true},
		{"in flight and another failing: not room alone", []string{"max_failing=0"}, []Instance{inst("n1", "passing"), inst("n2", "passing"), inst("n3", "critical")}, nil, map[string]string{"n2": "x"}, false, "max_failing=0", false},
		{"this node remembered but gone", nil, []Instance{inst("n2", "passing")}, []string{"n1"}, nil, false, "on this node", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Evaluate("n1", []Service{{Name: "svc", Tags: tt.tags, Instances: tt.instances, Members: tt.members}}, tt.down)
			if rep.OK() != tt.ok {
				t.Fatalf("OK() = %v, want %v; problems: %q", rep.OK(), tt.ok, rep.Problems)
			}
			if !tt.ok && !strings.Contains(rep.Reason(), tt.mention) {
				t.Fatalf("reason %q does not mention %q", rep.Reason(), tt.mention)
			}
			if rep.RoomOnly != tt.room {
				t.Fatalf("RoomOnly = %v, want %v; problems: %q", rep.RoomOnly, tt.room, rep.Problems)
			}
		})
	}
}

// TestAtOnce: how many reboots at once each rule allows, and what a node's services say of it
// (its scarcest rule, and the services that leave more room than that).
func TestAtOnce(t *testing.T) {
	tests := []struct {
		tags  []string
		total int
		want  int
	}{
		{nil, 5, 1},
		{[]string{"max_failing=4"}, 29, 5},
		{[]string{"max_failing=4"}, 3, 3},
		{[]string{"max_failing=0"}, 3, 1},
		{[]string{"min_passing=3"}, 3, 1},
		{[]string{"min_passing=2"}, 2, 1},
		{[]string{"min_passing=2"}, 5, 4},
		{[]string{"min_passing=4"}, 3, 0},
		{[]string{"min_passing=1", "max_failing=1"}, 5, 2},
		{[]string{"min_passing=4", "max_failing=3"}, 5, 2},
		{[]string{"local_only"}, 7, math.MaxInt},
	}
	for _, tt := range tests {
		r, err := ParseRules(tt.tags)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AtOnce(tt.total); got != tt.want {
			t.Errorf("%v of %d: AtOnce = %d, want %d", tt.tags, tt.total, got, tt.want)
		}
	}

	var ctl []Instance
	for _, n := range []string{"n1", "n2", "n3"} {
		ctl = append(ctl, inst(n, "passing"))
	}
	shared := append(append([]Instance(nil), ctl...), inst("n4", "passing"), inst("n5", "passing"), inst("n6", "passing"))
	rep := Evaluate("n1", []Service{
		{Name: "galera", Tags: []string{"min_passing=3"}, Instances: ctl},
		{Name: "quobyte", Tags: []string{"max_failing=4"}, Instances: shared},
		{Name: "dkms", Tags: []string{"local_only"}, Instances: ctl},
	}, nil)
	if rep.Scarcity() != 1 || !slices.Equal(rep.Roomier(), []string{"quobyte"}) || !rep.Runs("dkms") || rep.Runs("nova") {
		t.Fatalf("scarcity %d, roomier %q: want 1 and quobyte", rep.Scarcity(), rep.Roomier())
	}
	if none := Evaluate("n1", nil, nil); none.Scarcity() != math.MaxInt || none.Roomier() != nil {
		t.Fatalf("no services: scarcity %d, roomier %q", none.Scarcity(), none.Roomier())
	}
}

// TestMalformedTags: a rule tag that cannot be read is ErrMalformedTag, in ParseRules and in the
// report (naming the service), so that it can be told from a failing check: it is the
// service's configuration, which no waiting fixes. A service that is merely unhealthy, or
// carries tags that are not rules, is not malformed.
func TestMalformedTags(t *testing.T) {
	tests := []struct {
		name      string
		tags      []string
		status    string
		malformed bool
	}{
		{"not a number", []string{"min_passing=abc"}, "passing", true},
		{"negative", []string{"max_failing=-1"}, "passing", true},
		{"no value", []string{"min_passing"}, "passing", true},
		{"empty value", []string{"max_failing="}, "passing", true},
		{"a value where none is taken", []string{"ignore_maintenance=yes"}, "passing", true},
		{"given twice", []string{"min_passing=1", "min_passing=2"}, "passing", true},
		{"local_only with a quorum rule", []string{"local_only", "max_failing=1"}, "passing", true},
		{"malformed, and failing too", []string{"min_passing=x"}, "critical", true},
		{"failing, but well formed", []string{"min_passing=1"}, "critical", false},
		{"given twice, the same", []string{"min_passing=2", "min_passing=2"}, "passing", false},
		{"tags that are no rules", []string{"primary", "v=2", "min_passing_old=x"}, "passing", false},
		// The Python rebootmgr's tags of one side of the reboot, alone: refused; beside the tag
		// rebootmgr (both sides, in either rebootmgr): what it says.
		{"the Python rebootmgr's preboot alone", []string{"rebootmgr_preboot"}, "passing", true},
		{"the Python rebootmgr's postboot alone", []string{"rebootmgr_postboot", "min_passing=1"}, "passing", true},
		{"the Python rebootmgr's postboot beside rebootmgr", []string{"rebootmgr", "rebootmgr_postboot"}, "passing", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules(tt.tags)
			if got := errors.Is(err, ErrMalformedTag); got != tt.malformed {
				t.Fatalf("ParseRules(%q) = %v: malformed %v, want %v", tt.tags, err, got, tt.malformed)
			}
			rep := Evaluate("n1", []Service{
				{Name: "svc", Tags: tt.tags, Instances: []Instance{inst("n1", tt.status)}},
				{Name: "zookeeper", Tags: []string{"min_passing=1"}, Instances: []Instance{inst("n1", "passing")}},
			}, nil)
			m := rep.Malformed()
			if got := errors.Is(m, ErrMalformedTag); got != tt.malformed {
				t.Fatalf("Report.Malformed() = %v, want malformed %v", m, tt.malformed)
			}
			if tt.malformed {
				if rep.OK() {
					t.Fatal("a service with a malformed tag passes")
				}
				if !strings.Contains(m.Error(), "service svc:") || strings.Contains(m.Error(), "zookeeper") {
					t.Fatalf("Malformed() does not name only the service: %v", m)
				}
			}
		})
	}
}

// TestFleetRule: a service's tags carry a rule over the fleet when it is tagged rebootmgr, its
// rules can be read, and they count more than the node's own instance; so does a report.
func TestFleetRule(t *testing.T) {
	for _, tt := range []struct {
		tags []string
		want bool
	}{
		{[]string{Tag, "max_failing=3"}, true},
		{[]string{Tag, "min_passing=2", "ignore_maintenance"}, true},
		{[]string{Tag}, true}, // every instance must pass
		{[]string{Tag, "local_only"}, false},
		{[]string{Tag, "local_only", "ignore_maintenance"}, false},
		{[]string{"max_failing=3"}, false},      // not tagged rebootmgr: no rule of rebootmgr's
		{[]string{Tag, "min_passing=x"}, false}, // cannot be read
		{nil, false},
	} {
		if got := FleetRule(tt.tags); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.tags, got, tt.want)
		}
		svc := Service{Name: "s", Tags: tt.tags, Instances: []Instance{{Node: "n1", Checks: []Check{{Node: "n1", Status: "passing"}}}}}
		if got := Evaluate("n1", []Service{svc}, nil).FleetRuled(); tt.tags != nil && slices.Contains(tt.tags, Tag) && got != tt.want {
			t.Errorf("report of %v: %v, want %v", tt.tags, got, tt.want)
		}
	}
}

// TestDisagreeingInstances: an instance on another node whose own tags give other rules than
// this node's is named with its rules; one with the same rules, or not tagged rebootmgr, is not.
func TestDisagreeingInstances(t *testing.T) {
	rep := Evaluate("n1", []Service{{Name: "svc", Tags: []string{Tag, "min_passing=2"}, Instances: []Instance{
		tagged(inst("n1", "passing"), Tag, "min_passing=2"),
		tagged(inst("n2", "passing"), Tag, "min_passing=2"),
		tagged(inst("n3", "passing"), Tag, "min_passing=1", "ignore_maintenance"),
		tagged(inst("n4", "passing"), Tag, "min_passing=x"),
		tagged(inst("n5", "passing"), "min_passing=1"),
	}}}, nil)
	got := rep.Services[0].Disagree
	if len(got) != 2 || !strings.Contains(got[0], "n3: min_passing=1,ignore_maintenance") || !strings.Contains(got[1], "n4: ") || !strings.Contains(got[1], "min_passing=x") {
		t.Fatalf("disagreeing instances %q", got)
	}
}

// TestHeldBy: the nodes in flight whose return would let every rule hold are named only when
// nothing else fails: a node rebooting (its checks critical), or gone from the catalog while in
// flight, holds it; a failing instance of a node not in flight means its health is its own.
func TestHeldBy(t *testing.T) {
	three := []Instance{inst("n1", "passing"), inst("n2", "passing"), inst("n3", "passing")}
	rebooting := []Instance{inst("n1", "passing"), inst("n2", "critical"), inst("n3", "passing")}
	tests := []struct {
		name      string
		tags      []string
		instances []Instance
		members   []string
		down      map[string]string
		held      []string
	}{
		{"in flight, still passing", []string{"max_failing=0"}, three, nil, map[string]string{"n2": "x"}, []string{"n2"}},
		{"in flight, rebooting", []string{"max_failing=0"}, rebooting, nil, map[string]string{"n2": "x"}, []string{"n2"}},
		{"in flight and gone from the catalog", []string{"max_failing=0"}, three[:2], []string{"n3"}, map[string]string{"n3": "x"}, []string{"n3"}},
		{"two in flight", []string{"max_failing=1"}, rebooting, nil, map[string]string{"n2": "x", "n3": "y"}, []string{"n2", "n3"}},
		{"in flight beside a member gone that the rule allows", []string{"max_failing=1"}, three, []string{"n4"}, map[string]string{"n2": "x"}, []string{"n2"}},
		{"in flight and another failing", []string{"max_failing=0"}, rebooting, nil, map[string]string{"n3": "x"}, nil},
		{"failing, nobody in flight", []string{"max_failing=0"}, rebooting, nil, nil, nil},
		{"this node failing", []string{"max_failing=0"}, []Instance{inst("n1", "critical"), inst("n2", "passing")}, nil, map[string]string{"n2": "x"}, nil},
		{"passing: nothing holds it", []string{"max_failing=1"}, three, nil, map[string]string{"n2": "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Evaluate("n1", []Service{{Name: "svc", Tags: tt.tags, Instances: tt.instances, Members: tt.members}}, tt.down)
			if !slices.Equal(rep.HeldBy, tt.held) {
				t.Fatalf("HeldBy = %q, want %q; problems: %q", rep.HeldBy, tt.held, rep.Problems)
			}
		})
	}
}
