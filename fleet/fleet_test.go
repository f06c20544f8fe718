package fleet

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)

func inst(node, status string, tags ...string) health.Instance {
	return health.Instance{Node: node, ServiceID: "svc", Tags: tags, Checks: []health.Check{
		{Node: node, CheckID: "serfHealth", Status: "passing"},
		{Node: node, CheckID: "service:svc", Status: status},
	}}
}

// fleetSnapshot is a fleet of eight: n2 rebooting, n1 waiting for it, n3 disabled, n4 failing
// its galera check (which blocks n5 and n6 too, min_passing=3); c1 and c2 in group compute
// (limit 2), c1 rebooting and c2 free to go.
func fleetSnapshot() Snapshot {
	galera := []string{"rebootmgr", "min_passing=3"}
	return Snapshot{
		At: t0,
		Groups: map[string]GroupState{
			lock.DefaultGroup: {Limit: lock.One, Lock: lock.Record{Version: lock.Version, Holders: []lock.Holder{
				{Node: "n2", Phase: lock.Rebooting, Since: t0.Add(-192 * time.Second), RebootStarted: t0.Add(-60 * time.Second)},
			}}},
			"compute": {Limit: lock.Limit{N: 2}, Lock: lock.Record{Version: lock.Version, Holders: []lock.Holder{
				{Node: "c1", Phase: lock.Preparing, Since: t0.Add(-30 * time.Second)},
			}}},
		},
		Requests: map[string]Mark{"n1": {}, "n2": {}, "n5": {}, "c1": {}, "c2": {}},
		Disabled: map[string]Mark{"n3": {Value: "disk replacement (alice)"}},
		Nodes:    map[string]string{"n1": "", "n2": "", "n3": "", "n4": "", "n5": "", "n6": "", "c1": "compute", "c2": "compute"},
		Services: []Service{
			{Name: "galera", Instances: []health.Instance{inst("n4", "critical", galera...), inst("n5", "passing", galera...), inst("n6", "passing", galera...)}},
			{Name: "gateway", Instances: []health.Instance{inst("n1", "passing", "rebootmgr", "min_passing=1"), inst("n2", "passing", "rebootmgr", "min_passing=1")}},
		},
		Local:      "n1",
		LocalFiles: []string{"/var/run/reboot_required"},
	}
}

func TestCompute(t *testing.T) {
	st := Compute(fleetSnapshot())
	want := map[string]string{"n1": GateLock, "n2": "", "n3": GateDisabled, "n4": GateHealth, "n5": GateHealth, "n6": GateHealth, "c1": "", "c2": ""}
	for _, n := range st.Nodes {
		got := ""
		if n.Blocked != nil {
			got = n.Blocked.Gate
		}
		if got != want[n.Node] {
			t.Errorf("%s blocked by %q, want %q (%+v)", n.Node, got, want[n.Node], n.Blocked)
		}
	}

	// A stop flag blocks every node but one whose reboot happened (n2): it finishes it.
	stopped := fleetSnapshot()
	stopped.Stop = &Mark{Value: "storage upgrade"}
	for _, n := range Compute(stopped).Nodes {
		if blockedByStop := n.Blocked != nil && n.Blocked.Gate == GateStop; blockedByStop == (n.Node == "n2") {
			t.Errorf("%s blocked by %+v under the stop flag", n.Node, n.Blocked)
		}
	}

	// A group's stop flag and a full group lock block only that group.
	groupStopped := fleetSnapshot()
	g := groupStopped.Groups["compute"]
	g.Stop = &Mark{Value: "nova upgrade"}
	groupStopped.Groups["compute"] = g
	for _, n := range Compute(groupStopped).Nodes {
		blockedByStop := n.Blocked != nil && n.Blocked.Gate == GateStop
		if blockedByStop != (n.Group == "compute") {
			t.Errorf("%s (group %s) blocked by %+v", n.Node, n.Group, n.Blocked)
		}
	}
	full := fleetSnapshot()
	g = full.Groups["compute"]
	g.Limit = lock.One
	full.Groups["compute"] = g
	for _, n := range Compute(full).Nodes {
		if n.Node == "c2" && (n.Blocked == nil || n.Blocked.Gate != GateLock) {
			t.Errorf("c2 not blocked by its group's full lock: %+v", n.Blocked)
		}
	}
}

func TestGolden(t *testing.T) {
	st := Compute(fleetSnapshot())
	tests := []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"status.json", func(b *bytes.Buffer) error { return WriteJSON(b, st) }},
		{"status.txt", func(b *bytes.Buffer) error { return WriteTable(b, st, false) }},
		{"status.color.txt", func(b *bytes.Buffer) error { return WriteTable(b, st, true) }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Fatalf("%s differs from the golden file:\n%s", tt.file, b.String())
			}
		})
	}
}

// TestPythonHolders: a Python holder of no group holds every group's lock, one of a group that
// group's only; either blocks at the lock gate and shows in its groups, and the node a marker
// names counts as a failing instance of its services (health comes before the lock).
func TestPythonHolders(t *testing.T) {
	tests := []struct {
		name   string
		fleet  map[string]string
		groups map[string]map[string]string
		want   map[string]string // node -> the gate that blocks it ("": none)
		python map[string]string // group -> its python_holders, as LegacyHeld says them
	}{
		{name: "session lock of no group", fleet: map[string]string{"service/rebootmgr/lock/.lock": ""},
			want:   map[string]string{"n1": GateLock, "c2": GateLock},
			python: map[string]string{lock.DefaultGroup: "service/rebootmgr/lock/.lock", "compute": "service/rebootmgr/lock/.lock"}},
		{name: "marker of no group", fleet: map[string]string{"service/rebootmgr/reboot_in_progress": "py-1"},
			want:   map[string]string{"n1": GateHealth, "c2": GateHealth},
			python: map[string]string{lock.DefaultGroup: "service/rebootmgr/reboot_in_progress = py-1", "compute": "service/rebootmgr/reboot_in_progress = py-1"}},
		{name: "the default group's marker", groups: map[string]map[string]string{lock.DefaultGroup: {"service/rebootmgr/default_reboot_in_progress": "py-1"}},
			want:   map[string]string{"n1": GateHealth, "c2": ""},
			python: map[string]string{lock.DefaultGroup: "service/rebootmgr/default_reboot_in_progress = py-1"}},
		{name: "the group's session lock", groups: map[string]map[string]string{"compute": {"service/rebootmgr/compute_lock/.lock": ""}},
			want:   map[string]string{"n1": "", "c2": GateLock},
			python: map[string]string{"compute": "service/rebootmgr/compute_lock/.lock"}},
		{name: "the group's marker", groups: map[string]map[string]string{"compute": {"service/rebootmgr/compute_reboot_in_progress": "py-1"}},
			want:   map[string]string{"n1": "", "c2": GateHealth},
			python: map[string]string{"compute": "service/rebootmgr/compute_reboot_in_progress = py-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			web := []string{"rebootmgr", "max_failing=0"}
			s := Snapshot{
				At:       t0,
				Legacy:   tt.fleet,
				Groups:   map[string]GroupState{},
				Requests: map[string]Mark{"n1": {}, "c2": {}},
				Nodes:    map[string]string{"n1": "", "c2": "compute", "py-1": ""},
				Services: []Service{{Name: "web", Instances: []health.Instance{inst("n1", "passing", web...), inst("c2", "passing", web...), inst("py-1", "passing", web...)}}},
			}
			for name, legacy := range tt.groups {
				g := s.group(name)
				g.Legacy = legacy
				s.Groups[name] = g
			}
			st := Compute(s)
			for _, n := range st.Nodes {
				want, ok := tt.want[n.Node]
				if !ok {
					continue
				}
				got := ""
				if n.Blocked != nil {
					got = n.Blocked.Gate
				}
				if got != want {
					t.Errorf("%s: blocked by %+v, want gate %q", n.Node, n.Blocked, want)
				}
				if want == GateLock && !strings.Contains(n.Blocked.Reason, "the Python rebootmgr holds the lock") {
					t.Errorf("%s: blocked by %+v", n.Node, n.Blocked)
				}
				if want == GateHealth && !strings.Contains(n.Blocked.Reason, "py-1") {
					t.Errorf("%s: blocked by %+v, not by py-1 in flight", n.Node, n.Blocked)
				}
			}
			for _, g := range st.Groups {
				if got := pipeline.LegacyHeld(g.Python); got != tt.python[g.Name] {
					t.Errorf("group %s: python holders %q, want %q", g.Name, got, tt.python[g.Name])
				}
			}
		})
	}
}
