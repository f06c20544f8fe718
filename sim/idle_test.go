package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/watch"
)

// TestIdleCostDoesNotGrowWithTheService: an idle daemon's requests and bytes a minute are the
// same for a service of 10 instances and of 1,000: its daemons take turns reading it whole.
func TestIdleCostDoesNotGrowWithTheService(t *testing.T) {
	cost := map[int]IdleResult{}
	for _, n := range []int{10, 1000} {
		res, err := Idle(IdleConfig{Seed: 1, Instances: n, Flap: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(res.Summary())
		cost[n] = res
	}
	small, large := cost[10], cost[1000]
	if large.Requests > small.Requests*1.1 || large.Bytes > small.Bytes*1.1 {
		t.Fatalf("an idle daemon of a service of 1,000 instances costs %.2f requests and %.0f bytes a minute, of 10: %.2f and %.0f",
			large.Requests, large.Bytes, small.Requests, small.Bytes)
	}
}

// TestIdleDaemonsRememberANewMember: a node without a daemon that joins a service whose daemons
// are all idle is remembered by the first of them whose turn at reading the service comes: within
// ceil(n/2) ticks and one, for n nodes at their last read.
func TestIdleDaemonsRememberANewMember(t *testing.T) {
	for _, tt := range []struct{ instances, daemons int }{{10, 2}, {100, 10}, {1000, 2}} {
		t.Run(fmt.Sprint(tt.instances), func(t *testing.T) {
			const interval = 5 * time.Minute
			period := int(watch.Period(tt.instances))
			res, err := Idle(IdleConfig{Seed: 1, Instances: tt.instances, Daemons: tt.daemons, Ticks: 2*period + 4, Join: 47 * time.Minute, Interval: interval})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.Summary())
			if bound := time.Duration(period+1) * interval; res.Remembered < 0 || res.Remembered > bound {
				t.Fatalf("a node that joined %d instances with %d idle daemons was remembered after %s (-1: never), past %s", tt.instances, tt.daemons, res.Remembered, bound)
			}
		})
	}
}
