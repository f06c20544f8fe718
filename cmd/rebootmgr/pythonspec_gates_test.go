package main

import (
	"os"
	"strings"
	"testing"
)

// pySpecsGates: test_stopflag, test_triggers, test_reboot_group, test_whitelist, test_config.
func pySpecsGates() []pySpec {
	stop := func(t *testing.T, n *testNode) { n.put("service/rebootmgr/stop", "reason: stopped for testing") }
	specs := []pySpec{
		{py: "test_stopflag::test_not_verbose", setup: stop, code: exitStopped, mention: []string{"service/rebootmgr/stop"},
			differs: "every non-zero exit prints its one line, at every log level"},
		{py: "test_stopflag::test_verbose", setup: stop, args: []string{"reboot", "--log-level", "info"}, code: exitStopped,
			mention: []string{"stop flag is set", "service/rebootmgr/stop", "stopped for testing"}},
		{py: "test_stopflag::test_set_global_stop_flag", args: []string{"stop"}, code: 0, check: keySet("service/rebootmgr/stop", "")},
		{py: "test_stopflag::test_set_global_stop_flag_with_reason", args: []string{"stop", "--reason", "My reason"}, code: 0,
			check: keySet("service/rebootmgr/stop", "My reason")},
		{py: "test_stopflag::test_unset_global_stop_flag", setup: stop, args: []string{"resume"}, code: 0, check: keyGone("service/rebootmgr/stop")},
		{py: "test_stopflag::test_set_local_stop_flag", args: []string{"disable"}, code: 0, check: keySet("service/rebootmgr/consul1/disabled", ""),
			differs: "a node without a Python config gets rebootmgr's disabled mark only (a Python node without one never runs)"},
		{py: "test_stopflag::test_set_local_stop_flag_with_reason", args: []string{"disable", "--reason", "My reason"}, code: 0,
			setup: func(t *testing.T, n *testNode) { pyConfig(n, `{"enabled": true}`) },
			check: func(t *testing.T, n *testNode, r result) {
				keySet("service/rebootmgr/consul1/disabled", "My reason")(t, n, r)
				keySet("service/rebootmgr/nodes/consul1/config", `"enabled":false`)(t, n, r)
			}},
		{py: "test_stopflag::test_unset_local_stop_flag", args: []string{"enable"}, code: 0,
			setup: func(t *testing.T, n *testNode) { n.put("service/rebootmgr/consul1/disabled", "x") },
			check: keyGone("service/rebootmgr/consul1/disabled")},

		{py: "test_triggers::test_reboot_not_required", args: []string{"reboot", "--check-triggers"}, code: 0, check: rebooted(0)},
		{py: "test_triggers::test_reboot_required_because_consul", args: []string{"reboot", "--check-triggers"},
			setup: func(t *testing.T, n *testNode) { n.put("service/rebootmgr/consul1/reboot_required", "") },
			code:  0, check: rebooted(1)},
		{py: "test_triggers::test_reboot_required_because_consul_but_removed_after_sleep", args: []string{"reboot", "--check-triggers"},
			setup: func(t *testing.T, n *testNode) {
				n.put("service/rebootmgr/consul1/reboot_required", "")
				n.task("pre", "00_cancel.sh", n.curl("DELETE", "service/rebootmgr/consul1/reboot_required", ""))
			},
			code: 0, check: rebooted(0)},
		{py: "test_triggers::test_reboot_required_because_file", args: []string{"reboot", "--check-triggers"},
			setup: func(t *testing.T, n *testNode) { n.task("pre", "00_none.sh", "true"); touch(t, n.trigger) },
			code:  0, check: rebooted(1)},
		{py: "test_triggers::test_reboot_required_because_file_but_removed_after_sleep", args: []string{"reboot", "--check-triggers"},
			setup: func(t *testing.T, n *testNode) { touch(t, n.trigger); n.task("pre", "00_rm.sh", "rm "+n.trigger) },
			code:  0, check: rebooted(0)},
		{py: "test_triggers::test_reboot_on_holiday", args: []string{"reboot", "--blackout", today()}, code: exitWindow,
			check: rebooted(0)},
		{py: "test_triggers::test_reboot_on_not_a_holiday", args: []string{"reboot", "--blackout", "2001-12-25"}, code: 0, check: rebooted(1)},
		{py: "test_triggers::test_reboot_when_node_disabled", setup: func(t *testing.T, n *testNode) { pyConfig(n, `{"enabled": false}`) },
			code: exitDisabled, mention: []string{"service/rebootmgr/nodes/consul1/config"}, check: rebooted(0)},
		{py: "test_triggers::test_reboot_when_node_disabled_after_sleep",
			setup: func(t *testing.T, n *testNode) {
				pyConfig(n, `{"enabled": true}`)
				n.task("pre", "00_disable.sh", n.curl("PUT", "service/rebootmgr/nodes/consul1/config", `{"enabled": false}`))
			},
			code: exitDisabled, check: rebooted(0),
			differs: "an xfail of the Python suite: rebootmgr reads the node's config again before the reboot"},
		{py: "test_triggers::test_reboot_when_global_stop_flag", setup: stop, code: exitStopped, mention: []string{"service/rebootmgr/stop"}, check: rebooted(0)},
		{py: "test_triggers::test_reboot_when_global_stop_flag_after_sleep",
			setup: func(t *testing.T, n *testNode) {
				n.task("pre", "00_stop.sh", n.curl("PUT", "service/rebootmgr/stop", "")+"; sleep 30")
			},
			code: exitStopped, mention: []string{"service/rebootmgr/stop"}, check: rebooted(0)},

		{py: "test_reboot_group::test_reboot_fails_if_only_global_stop_flag", setup: stop, code: exitStopped, mention: []string{"service/rebootmgr/stop"}},
		{py: "test_reboot_group::test_reboot_fails_if_global_stop_flag_with_group_in_config", group: "consul", setup: stop, code: exitStopped, mention: []string{"service/rebootmgr/stop"}},
		{py: "test_reboot_group::test_reboot_fails_if_global_stop_flag_with_group_in_command", group: "consul", setup: stop, args: []string{"reboot", "--group", "consul"},
			code: exitStopped, mention: []string{"service/rebootmgr/stop"}},
		{py: "test_reboot_group::test_reboot_fails_if_not_global_stop_flag_and_correct_group_stop_flag_in_command", group: "consul", args: []string{"reboot", "--group", "consul"},
			setup: func(t *testing.T, n *testNode) { n.put("service/rebootmgr/consul_stop", "") },
			code:  exitStopped, mention: []string{"service/rebootmgr/consul_stop"}},
		{py: "test_reboot_group::test_reboot_fails_if_not_global_stop_flag_and_correct_group_stop_flag_in_config", group: "consul",
			setup: func(t *testing.T, n *testNode) { n.put("service/rebootmgr/groups/consul/stop", "") },
			code:  exitStopped, mention: []string{"service/rebootmgr/groups/consul/stop"}},
		{py: "test_reboot_group::test_reboot_succeeds_if_not_global_stop_flag_and_wrong_group_stop_flag_in_command", group: "consul", args: []string{"reboot", "--group", "consul"},
			setup: func(t *testing.T, n *testNode) { n.put("service/rebootmgr/wrong_stop", "") },
			code:  0, check: rebooted(1)},
		{py: "test_reboot_group::test_reboot_succeeds_if_not_global_stop_flag_and_wrong_group_stop_flag_in_config", group: "consul",
			setup: func(t *testing.T, n *testNode) { n.put("service/rebootmgr/groups/wrong/stop", "") },
			code:  0, check: rebooted(1)},
		{py: "test_reboot_group::test_reboot_succeeds_if_not_global_stop_flag_not_group_stop_flag_in_command", group: "consul", args: []string{"reboot", "--group", "consul"},
			code: 0, check: rebooted(1)},
		{py: "test_reboot_group::test_reboot_succeeds_if_not_global_stop_flag_not_group_stop_flag_in_config", group: "consul", code: 0, check: rebooted(1)},
		{py: "test_reboot_group::test_set_group_stop_flag", group: "compute", args: []string{"stop", "--group", "compute"}, code: 0,
			check: func(t *testing.T, n *testNode, r result) {
				keySet("service/rebootmgr/groups/compute/stop", "")(t, n, r)
				keySet("service/rebootmgr/compute_stop", "")(t, n, r)
			}},
		{py: "test_reboot_group::test_set_group_stop_flag_with_reason", group: "compute", args: []string{"stop", "--group", "compute", "--reason", "maintenance window"}, code: 0,
			check: keySet("service/rebootmgr/compute_stop", "maintenance window")},
		{py: "test_reboot_group::test_unset_group_stop_flag", group: "compute", args: []string{"resume", "--group", "compute"}, code: 0,
			setup: func(t *testing.T, n *testNode) {
				n.put("service/rebootmgr/groups/compute/stop", "x")
				n.put("service/rebootmgr/compute_stop", "x")
			},
			check: func(t *testing.T, n *testNode, r result) {
				keyGone("service/rebootmgr/groups/compute/stop")(t, n, r)
				keyGone("service/rebootmgr/compute_stop")(t, n, r)
			}},
		{py: "test_reboot_group::test_set_group_stop_flag_from_config", group: "compute", args: []string{"stop", "--group", "compute"}, code: 0,
			check: keySet("service/rebootmgr/compute_stop", "")},
		{py: "test_reboot_group::test_set_group_stop_flag_without_group", args: []string{"stop", "--group"}, code: exitUsage,
			differs: "every node has a group: --group without one is a usage error (64), not 7"},
		{py: "test_reboot_group::test_unset_group_stop_flag_without_group", args: []string{"resume", "--group"}, code: exitUsage,
			differs: "every node has a group: --group without one is a usage error (64), not 7"},

		{py: "test_whitelist::test_reboot_succeeds_with_failing_checks_if_whitelisted",
			setup: func(t *testing.T, n *testNode) {
				n.put("service/rebootmgr/ignore_failed_checks", `["consul2"]`)
				serviceA(n, nil, pyInstance{node: "consul2", status: "critical"})
			},
			code: exitUnhealthy, mention: []string{"service/rebootmgr/ignore_failed_checks", "consul2", "max_failing"}, check: rebooted(0),
			differs: "ignore_failed_checks is not honoured: the health line names it and what to do instead"},
		{py: "test_whitelist::test_reboot_fails_with_failing_checks",
			setup: func(t *testing.T, n *testNode) { serviceA(n, nil, pyInstance{node: "consul2", status: "critical"}) },
			code:  exitUnhealthy, mention: []string{"consul2"}, check: rebooted(0)},
	}
	// The Python rebootmgr's flags that lift a gate for one run: usage errors that say what
	// rebootmgr does instead.
	for _, f := range []struct{ py, flag, says string }{
		{"test_whitelist::test_reboot_succeeds_with_failing_checks_if_ignored", "--ignore-failed-checks", "max_failing"},
		{"test_whitelist::test_reboot_succeeds_with_failing_consul_cluster_if_ignored", "--ignore-failed-checks", "max_failing"},
		{"test_triggers::test_reboot_when_node_disabled_but_ignored", "--ignore-node-disabled", "rebootmgr enable"},
		{"test_triggers::test_reboot_when_global_stop_flag_when_ignored", "--ignore-stop-flag", "rebootmgr resume"},
		{"test_triggers::test_reboot_when_global_stop_flag_after_sleep_when_ignored", "-s", "rebootmgr resume"},
		{"test_config::test_ensure_config_when_already_valid", "--ensure-config", "no node configuration is needed"},
		{"test_config::test_ensure_config_when_invalid", "--ensure-config", "no node configuration is needed"},
	} {
		specs = append(specs, pySpec{py: f.py, args: []string{"reboot", f.flag}, code: exitUsage, mention: []string{f.flag, f.says}, check: rebooted(0),
			differs: "a gate is lifted where it is set, never for one run"})
	}
	return specs
}

func keySet(key, contains string) func(t *testing.T, n *testNode, r result) {
	return func(t *testing.T, n *testNode, r result) {
		t.Helper()
		p := n.get(key)
		if p == nil || !strings.Contains(strings.ReplaceAll(string(p.Value), " ", ""), strings.ReplaceAll(contains, " ", "")) {
			t.Fatalf("%s = %v, want it set with %q: %s", key, p, contains, r)
		}
	}
}

func keyGone(key string) func(t *testing.T, n *testNode, r result) {
	return func(t *testing.T, n *testNode, r result) {
		t.Helper()
		if p := n.get(key); p != nil {
			t.Fatalf("%s still set: %q", key, p.Value)
		}
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
