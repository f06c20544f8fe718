package sim

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPythonNodeTalksAsItsCode: a Python node alone, asked once, makes the requests rebootmgr
// 0.0.32 makes (rebootmgr/main.py, consul_lib's Lock, python-consul), in their order: the run
// that reboots the machine, then the run after the boot that finishes. Its session's renewals
// (every 5 s, a thread of their own) are not in the trace.
func TestPythonNodeTalksAsItsCode(t *testing.T) {
	res, trace, err := One(Config{Nodes: 1, Groups: 1, PythonEvery: 1, Waves: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Violations) > 0 || res.PythonReboots != 1 {
		t.Fatalf("%s: %v", res.Summary(), res.Violations)
	}
	const cfg, gate = "GET /v1/kv/service/rebootmgr/nodes/n0001/config", "GET /v1/kv/service/rebootmgr/ignore_failed_checks"
	cluster := []string{gate, "GET /v1/kv/service/rebootmgr/nodes/?recurse=", "GET /v1/agent/members"}
	services := []string{gate, "GET /v1/agent/services", "GET /v1/health/service/shared", "GET /v1/health/service/svc-g1"}
	stop := []string{"GET /v1/kv/service/rebootmgr/stop", cfg, "GET /v1/kv/service/rebootmgr/g1_stop"}
	start := slices.Concat(
		[]string{cfg}, // config_is_present_and_valid
		cluster,       // check_consul_cluster
		[]string{cfg}, // resolve_lock
		[]string{"PUT /v1/session/create", "PUT /v1/kv/service/rebootmgr/g1_lock/.lock?acquire=S"},
		[]string{cfg, "GET /v1/kv/service/rebootmgr/g1_reboot_in_progress"}, // check_reboot_in_progress
	)
	want := slices.Concat(start,
		[]string{cfg}, // pre_reboot_state: its group key
		stop,
		[]string{cfg, "GET /v1/kv/service/rebootmgr/nodes/n0001/reboot_required"}, // is_node_disabled, triggers
		services,
		[]string{cfg}, // run_tasks; then the 130 s wait
		cluster, services,
		[]string{"GET /v1/kv/service/rebootmgr/g1_lock/.lock"}, // consul_lock.acquired
		stop,
		[]string{"GET /v1/kv/service/rebootmgr/nodes/n0001/reboot_required",
			"PUT /v1/kv/service/rebootmgr/g1_reboot_in_progress", // its marker
			"PUT /v1/kv/service/rebootmgr/g1_lock/.lock?release=S", "PUT /v1/session/destroy/S",
			cfg, "PUT /v1/agent/maintenance?enable=true&reason=reboot+by+rebootmgr", // then shutdown -r +1
			"PUT /v1/kv/service/rebootmgr/g1_lock/.lock", // cli()'s finally, its session closed
		},
		// After the boot.
		start,
		[]string{cfg}, // post_reboot_state: its group key
		services,
		[]string{cfg}, // run_tasks
		services,
		[]string{"PUT /v1/agent/maintenance?enable=false",
			"DELETE /v1/kv/service/rebootmgr/nodes/n0001/reboot_required",
			"DELETE /v1/kv/service/rebootmgr/g1_reboot_in_progress",
			"PUT /v1/kv/service/rebootmgr/g1_lock/.lock?release=S", "PUT /v1/session/destroy/S",
			"PUT /v1/kv/service/rebootmgr/g1_lock/.lock",
		},
	)
	call := regexp.MustCompile(`^ *[0-9.]+s n0001  ((GET|PUT|DELETE) .*)$`)
	session := regexp.MustCompile(`00000000-0000-4000-8000-[0-9a-f]{12}`)
	var got []string
	for _, line := range trace {
		if m := call.FindStringSubmatch(line); m != nil {
			got = append(got, session.ReplaceAllString(m[1], "S"))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the Python node's requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
