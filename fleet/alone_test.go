package fleet

import (
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestStatusAlone: status judges, as the pipeline does, who reboots alone. Under auto, c2 (it
// runs nova-compute, max_failing=3) waits while a holder without a rule over the fleet holds a
// place: one that runs nothing, or only local_only services, or one the catalog no longer lists
// that is remembered running only those; it goes beside a ruled holder, listed or only
// remembered. A node without a rule says so, and so does a node of no zone under a limit per
// zone.
func TestStatusAlone(t *testing.T) {
	nova := []string{"rebootmgr", "max_failing=3"}
	dkms := []string{"rebootmgr", "local_only"}
	for _, tt := range []struct {
		name   string
		holder string
		waits  bool
	}{
		{"a holder that runs nothing", "x-none", true},
		{"a holder with only local_only services", "x-dkms", true},
		{"a holder gone from the catalog, remembered with only local_only services", "gone-dkms", true},
		{"a ruled holder", "c1", false},
		{"a ruled holder gone from the catalog, remembered", "gone-nova", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Snapshot{
				At: t0,
				Groups: map[string]GroupState{"compute": {Limit: lock.Limit{Auto: true}, Lock: lock.Record{Version: lock.Version, Holders: []lock.Holder{
					{Node: tt.holder, Phase: lock.Rebooting, Since: t0},
				}}}},
				Requests: map[string]Mark{"c2": {}},
				Nodes:    map[string]string{"c1": "compute", "c2": "compute", "x-none": "compute", "x-dkms": "compute"},
				Services: []Service{
					{Name: "nova-compute", Instances: []health.Instance{inst("c1", "passing", nova...), inst("c2", "passing", nova...)}},
					{Name: "dkms", Instances: []health.Instance{inst("x-dkms", "passing", dkms...)}},
				},
				Members: map[string][]string{"nova-compute": {"c1", "c2", "gone-nova"}, "dkms": {"x-dkms", "gone-dkms"}},
			}
			rows := map[string]Node{}
			for _, n := range Compute(s).Nodes {
				rows[n.Node] = n
			}
			c2 := rows["c2"]
			blocked := c2.Blocked != nil && c2.Blocked.Gate == GateLock && strings.Contains(c2.Blocked.Reason, tt.holder+" holds a place and runs no service with a rule over the fleet")
			if blocked != tt.waits {
				t.Fatalf("c2 blocked by %+v, want waiting for %s: %v", c2.Blocked, tt.holder, tt.waits)
			}
			if c2.Alone != "" {
				t.Fatalf("c2, ruled, reboots alone: %s", c2.Alone)
			}
			if !strings.Contains(rows["x-none"].Alone, "no service with a rule over the fleet") || !strings.Contains(rows["x-dkms"].Alone, "no service with a rule over the fleet") {
				t.Fatalf("nodes without a rule: %q, %q", rows["x-none"].Alone, rows["x-dkms"].Alone)
			}
		})
	}
	zoned := Snapshot{
		At:     t0,
		Groups: map[string]GroupState{lock.DefaultGroup: {Limit: lock.Limit{N: 3, PerZone: 2}, Lock: lock.Record{Version: lock.Version}}},
		Nodes:  map[string]string{"n1": "", "n2": ""},
		Zones:  map[string]string{"n2": "rack-a"},
	}
	for _, n := range Compute(zoned).Nodes {
		if got := strings.Contains(n.Alone, "it has no zone"); got != (n.Node == "n1") {
			t.Errorf("%s: alone %q", n.Node, n.Alone)
		}
	}
}
