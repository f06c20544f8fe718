package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestStatusTakesTasksFromTheDaemon: a node's tasks are what its daemon found of them (it runs
// them, with its own --tasks-dir), never what the machine status runs on finds in its own:
// status with a tasks directory that does not exist here does not show "blocked by tasks" for
// a node whose daemon has its tasks, and status with good tasks here shows it for a node whose
// daemon found none.
func TestStatusTakesTasksFromTheDaemon(t *testing.T) {
	for _, tt := range []struct {
		name string
		// daemon and status are the tasks directories of each ("": the node's good one).
		daemon, status string
		blocked        bool
		says           string
	}{
		{"the daemon has its tasks, status's machine none", "", "no-such-dir", false, ""},
		{"the daemon has none, status's machine has them", "no-such-dir", "", true, "its daemon found, when it started: tasks directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			n.task("pre", "10-drain", "true")
			dir := func(d string) []string {
				if d == "" {
					return nil
				}
				return []string{"--tasks-dir", filepath.Join(n.dir, d)}
			}
			d := n.startDaemon(dir(tt.daemon)...)
			fleettest.WaitSeen(t, d.Log.Seen("idle: no reboot required"), "the first run")
			waitDaemonCheck(t, n, "the daemon's check passes", func(c *api.HealthCheck) bool { return c.Status == api.HealthPassing })
			row := statusOf(t, n, "n1", dir(tt.status)...)
			if got := row.Blocked != nil && row.Blocked.Gate == gate.Tasks; got != tt.blocked {
				t.Fatalf("blocked by tasks: %v, want %v: %+v", got, tt.blocked, row.Blocked)
			}
			if tt.blocked && !strings.Contains(row.Blocked.Reason, tt.says) {
				t.Fatalf("status does not say %q: %+v", tt.says, row.Blocked)
			}
			if !tt.blocked && row.Blocked != nil {
				t.Fatalf("an idle node whose daemon has its tasks: %+v", row.Blocked)
			}
		})
	}
}
