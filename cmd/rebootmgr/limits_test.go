package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// TestLimitsUnderRaces: the nodes of one group race, triggered together, round after round,
// with a pre-boot task that keeps them preparing for a second; each round exactly as many start
// as the group's limit (auto, a share, per zone) and the service's rule allow together, never
// more, and the nodes of one round share a zone when the limit is bounded per zone. (Within a
// round, the nodes that did not start run again while one more does, as daemons waiting their
// turn in the queue do.)
func TestLimitsUnderRaces(t *testing.T) {
	for _, tt := range []struct {
		name  string
		limit []string // the arguments of rebootmgr limit after the group
		zones []string
		tags  []string // the tags of the service every node runs (nil: no tagged service)
		want  []int    // how many start in each round
	}{
		{"auto: max_failing=2 lets three go", []string{"auto"}, []string{"", "", "", "", ""}, []string{"rebootmgr", "max_failing=2"}, []int{3, 2}},
		{"auto: no rule to decide by, one at a time", []string{"auto"}, []string{"", "", ""}, nil, []int{1, 1, 1}},
		{"40% of five is two", []string{"40%"}, []string{"", "", "", "", ""}, nil, []int{2, 2, 1}},
		{"auto, one zone at a time, two per zone", []string{"auto", "--per-zone", "2"}, []string{"a", "b", "a", "b", "b"}, []string{"rebootmgr", "max_failing=3"}, []int{2, 2, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			groups := make([]string, len(tt.zones))
			for i := range groups {
				groups[i] = "compute"
			}
			nodes := zonedCluster(t, groups, tt.zones)
			nodes[0].expect(nodes[0].run("limit", append([]string{"compute"}, tt.limit...)...), 0)
			if tt.tags != nil {
				for _, n := range nodes {
					n.agent.RegisterService("nova-compute", tt.tags, "passing")
				}
			}
			zoneOf := map[*testNode]string{}
			for i, n := range nodes {
				zoneOf[n] = tt.zones[i]
				if tt.tags != nil {
					for _, o := range nodes {
						n.agent.WaitCheck(o.agent.Node, "nova-compute", consultest.ServiceCheckID("nova-compute"), "passing")
					}
				}
				n.task("pre", "10-slow", "sleep 1")
				n.put(n.keys().RebootRequired(n.agent.Node), "")
			}
			done := map[*testNode]bool{}
			for round, want := range tt.want {
				// The nodes race, then those that did not start run again as long as one more
				// starts: a daemon waiting its turn in the queue runs again as soon as the node
				// before it took its place.
				var started []*testNode
				for waiting := nodes; ; {
					results := runAll(waiting, "reboot", "--check-triggers")
					more := startedIn(waiting, results, done, func(n *testNode, r result) {
						if r.code != exitUnhealthy && r.code != exitLockHeld {
							t.Fatalf("round %d: %s: %s", round, n.agent.Node, r)
						}
					})
					if len(more) == 0 {
						break
					}
					started = append(started, more...)
					waiting = slices.DeleteFunc(slices.Clone(waiting), func(n *testNode) bool { return slices.Contains(more, n) })
				}
				if len(started) != want {
					t.Fatalf("round %d: %d nodes started, want %d", round, len(started), want)
				}
				if rec := lockAt(t, nodes[0], "compute"); len(rec.Holders) != want {
					t.Fatalf("round %d: the lock holds %v", round, rec.Holders)
				}
				var zones []string
				for _, n := range started {
					zones = append(zones, zoneOf[n])
					n.boot()
					n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
					done[n] = true
				}
				slices.Sort(zones)
				if strings.Contains(tt.name, "zone") && len(slices.Compact(zones)) != 1 {
					t.Fatalf("round %d: nodes of zones %v rebooted together", round, zones)
				}
			}
			if len(done) != len(nodes) {
				t.Fatalf("%d of %d nodes rebooted", len(done), len(nodes))
			}
		})
	}
}
