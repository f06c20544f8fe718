package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/fleet"
)

// TestPythonDisabledHoldsTheNode: a node the Python rebootmgr disabled (its config's "enabled"
// false: an operator's --set-local-stop-flag, or a task that timed out) is disabled for
// rebootmgr too once it moves, and so is one whose config the Python rebootmgr takes for
// missing; reboot, check and status say so, naming the key. rebootmgr enable lets it go on
// both sides, keeping the config's other fields.
func TestPythonDisabledHoldsTheNode(t *testing.T) {
	n, _ := mixedPair(t, "compute", "compute")
	config := n.keys().PythonConfig("n00")
	n.put(n.keys().RebootRequired("n00"), "")
	for _, value := range []string{
		`{"enabled": false, "message": "Could not finish task /etc/rebootmgr/pre_boot_tasks/10-drain in 120 minutes", "group": "compute"}`,
		`{"disabled": true}`,
		`{"group": "compute"}`,
		`not json`,
	} {
		n.put(config, value)
		n.expect(n.run("reboot", "--check-triggers"), exitDisabled, "the Python rebootmgr's config "+config)
		n.expect(n.run("check"), exitDisabled, config)
		if row := statusOf(t, n, "n00"); row.Disabled == nil || !strings.Contains(*row.Disabled, config) {
			t.Fatalf("status of n00 with %s: disabled %v", value, row.Disabled)
		}
	}
	n.put(config, `{"enabled": false, "message": "by alice", "group": "compute"}`)
	n.expect(n.run("enable", "n00"), 0, config+`: "enabled": true`)
	var cfg map[string]any
	if err := json.Unmarshal(n.get(config).Value, &cfg); err != nil || cfg["enabled"] != true || cfg["message"] != "" || cfg["group"] != "compute" {
		t.Fatalf("config after enable: %s %v", n.get(config).Value, err)
	}
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
}

// TestMarksHoldBothSides: in a mixed fleet every stop and disable holds both sides: rebootmgr
// disable writes the Python node's config too (it exits 101), stop --group the Python
// rebootmgr's <group>_stop (it exits 102), and the Python rebootmgr's own group stop
// (--set-group-stop-flag) stops rebootmgr's nodes of the group; enable and resume --group let
// both go.
func TestMarksHoldBothSides(t *testing.T) {
	n, py := mixedPair(t, "compute", "compute")
	py.gates = true
	config := n.keys().PythonConfig("py-1")
	n.put(config, `{"enabled": true, "message": ""}`)
	n.put(n.keys().RebootRequired("n00"), "")

	n.expect(n.run("disable", "py-1", "--reason", "disk swap"), 0, "disabled py-1")
	if code := py.run(); code != pyExitNodeDisabled {
		t.Fatalf("python node disabled by rebootmgr disable: exit %d", code)
	}
	n.expect(n.run("enable", "py-1"), 0, "enabled py-1")
	if n.get(n.keys().Disabled("py-1")) != nil || py.disabled() {
		t.Fatalf("py-1 still disabled: %s", n.get(config).Value)
	}

	n.expect(n.run("stop", "--group", "compute", "--reason", "nova upgrade"), 0, n.keys().PythonGroupStop("compute"))
	if code := py.run(); code != pyExitStopFlagSet {
		t.Fatalf("python node of a group stopped by rebootmgr: exit %d", code)
	}
	n.expect(n.run("resume", "--group", "compute"), 0, n.keys().PythonGroupStop("compute"))
	if n.get(n.keys().PythonGroupStop("compute")) != nil || n.get(n.keys().GroupStop("compute")) != nil {
		t.Fatal("resume --group left a stop flag")
	}

	// The Python rebootmgr's --set-group-stop-flag: con.kv.put("service/rebootmgr/compute_stop", reason).
	py.put("service/rebootmgr/compute_stop", []byte("Set by bob, stop reason: ceph"), nil)
	n.expect(n.run("reboot", "--check-triggers"), exitStopped, "compute_stop", "ceph")
	st := status(t, n)
	for _, g := range st.Groups {
		if g.Name == "compute" && (g.Stop == nil || !strings.Contains(g.Stop.Value, "ceph")) {
			t.Fatalf("status: group compute %+v", g)
		}
	}
	py.call("DELETE", "/v1/kv/service/rebootmgr/compute_stop", nil, nil)
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
	if code := py.run(); code != pyExitLockHeld || py.rebootCount() != 0 {
		t.Fatalf("python node while n00 reboots: exit %d", code)
	}
}

// TestStatusPythonGroup: status puts a node of the Python rebootmgr in the group its config
// names, or whose marker names it while it reboots; given its group only by --group, which
// Consul does not hold, it says that the group is unknown.
func TestStatusPythonGroup(t *testing.T) {
	n, py := mixedPair(t, "compute", "compute")
	row := func() fleet.Node { return statusOf(t, n, "py-1") }
	n.put(n.keys().PythonConfig("py-1"), `{"enabled": true, "message": ""}`)
	if r := row(); r.Group != "default" || r.Python != "unknown" {
		t.Fatalf("py-1 given --group only: group %q, python group %q", r.Group, r.Python)
	}
	if code := py.run(); code != pyExitOK || py.rebootCount() != 1 {
		t.Fatalf("python node: exit %d", code)
	}
	if r := row(); r.Group != "compute" || r.Python != "compute" {
		t.Fatalf("py-1 rebooting under compute's marker: group %q, python group %q", r.Group, r.Python)
	}
	if code := py.run(); code != pyExitOK {
		t.Fatalf("python node after its boot: exit %d", code)
	}
	n.put(n.keys().PythonConfig("py-1"), `{"enabled": true, "message": "", "group": "compute"}`)
	if r := row(); r.Group != "compute" || r.Python != "compute" {
		t.Fatalf("py-1 with its config's group: group %q, python group %q", r.Group, r.Python)
	}
}
