package place_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestForRoom: a health gate that fails only for reboots in flight that hold places in the
// node's own group, under a limit that counts, is a wait for the group's places (ErrForRoom:
// the node waits in the queue, told when one opens); a reboot of another group, a limit of auto,
// a failure of its own, or a node that holds a place already, is a wait for health as before.
func TestForRoom(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	held := lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "x", Phase: lock.Rebooting, Since: t0}}}
	mine := lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "a", Phase: lock.Preparing, Since: t0}}}
	inst := func(n, status string) health.Instance {
		return health.Instance{Node: n, ServiceID: "svc", Checks: []health.Check{{Node: n, CheckID: "c", Status: status}}}
	}
	svc := func(instances ...health.Instance) []health.Service {
		return []health.Service{{Name: "svc", Tags: []string{"max_failing=0"}, Instances: instances}}
	}
	rebooting := svc(inst("a", "passing"), inst("x", "critical"))
	both := lock.Record{Version: lock.Version, Holders: append(slices.Clone(mine.Holders), held.Holders...)}
	for _, tt := range []struct {
		name     string
		services []health.Service
		rec      lock.Record
		limit    lock.Limit
		down     map[string]string
		forRoom  bool
	}{
		{"its group's reboot in flight", rebooting, held, lock.Limit{N: 2}, map[string]string{"x": "g"}, true},
		{"a reboot of another group", rebooting, lock.Record{Version: lock.Version}, lock.Limit{N: 2}, map[string]string{"x": "other"}, false},
		{"under auto", rebooting, held, lock.Limit{Auto: true}, map[string]string{"x": "g"}, false},
		{"another instance failing besides", svc(inst("a", "passing"), inst("x", "critical"), inst("y", "critical")), held, lock.Limit{N: 2}, map[string]string{"x": "g"}, false},
		{"the node holds a place already", rebooting, both, lock.Limit{N: 2}, map[string]string{"x": "g"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := health.Evaluate("a", tt.services, tt.down)
			v := place.View{Group: "g", Lock: tt.rec, Limit: tt.limit}
			err := place.Unhealthy(rep, v, "a", "health")
			if !errors.Is(err, ending.ErrUnhealthy) {
				t.Fatalf("not a health gate: %v", err)
			}
			if got := errors.Is(err, place.ErrForRoom); got != tt.forRoom {
				t.Fatalf("ErrForRoom = %v, want %v: %v (held by %q)", got, tt.forRoom, err, rep.HeldBy)
			}
		})
	}
}
