package pipeline_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// TestBreakerTrips: a failed reboot recorded in the history stops the group, telling why, when
// the failures within the breaker's period reach its limit; fewer, older ones, or a reboot that
// finished do not.
func TestBreakerTrips(t *testing.T) {
	breaker := history.Breaker{Failures: 3, Period: time.Hour}
	for _, tt := range []struct {
		name string
		// before are the failures in the history, by how long ago they ended.
		before   []time.Duration
		finishes bool
		trips    bool
	}{
		{"the third failure within the period", []time.Duration{10 * time.Minute, 50 * time.Minute}, false, true},
		{"the second failure", []time.Duration{10 * time.Minute}, false, false},
		{"older failures do not count", []time.Duration{10 * time.Minute, 2 * time.Hour}, false, false},
		{"a reboot that finished trips nothing", []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.config.Breaker = breaker
			now := m.clock.Now()
			for i, ago := range tt.before {
				e := history.Entry{Node: "n" + string(rune('4'+i)), Start: now.Add(-ago - time.Minute), End: now.Add(-ago), Outcome: history.TaskFailed}
				if _, err := m.store.AppendHistory(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			var told []string
			m.notifier = func(kind string) { told = append(told, kind) }
			if tt.finishes {
				m.store.PutLock(lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "n1", Phase: lock.Finishing, Since: now, RebootStarted: now}}})
				if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.Finished {
					t.Fatalf("finishing: %v %v", res.Outcome, err)
				}
			} else {
				m.store.SetTrigger("n1", "", true)
				m.reboot.Err = errors.New("systemctl: connection refused")
				if _, err := m.run(t.Context()); err == nil || !strings.Contains(err.Error(), "reboot command failed") {
					t.Fatalf("run: %v", err)
				}
			}
			stop, _ := m.store.Stop(t.Context())
			if stop.Set != tt.trips || slices.Contains(told, pipeline.NotifyGroupStopped) != tt.trips {
				t.Fatalf("group stopped %v (%q), told %v; want tripped %v", stop.Set, stop.Value, told, tt.trips)
			}
			if tt.trips && !strings.Contains(stop.Value, "circuit breaker: 3 failed reboots within 1h0m0s") {
				t.Fatalf("stop reason %q", stop.Value)
			}
		})
	}
}
