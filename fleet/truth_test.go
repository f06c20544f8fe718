package fleet

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestStatusTellsTheTruth: what a row's NOW says of a node, by what its daemon says and what
// asks for its reboot.
func TestStatusTellsTheTruth(t *testing.T) {
	running := Daemon{State: DaemonRunning, Status: "idle", Settings: Settings{Enabled: true, MinRebootInterval: time.Hour}}
	lately := history.Log{Entries: []history.Entry{{Node: "n1", Outcome: history.Finished, Start: t0.Add(-20 * time.Minute), End: t0.Add(-10 * time.Minute)}}}
	for _, tt := range []struct {
		name      string
		snap      func(s *Snapshot)
		says, not []string
	}{
		{"requested, its daemon runs", func(s *Snapshot) {}, []string{"ready: may reboot now"}, nil},
		{"requested, its daemon down", func(s *Snapshot) {
			d := running
			d.State, d.Status = DaemonDown, "stopped at 2026-11-24T17:00:00Z"
			s.Daemons["n1"] = d
		}, []string{"requested, but nothing reboots it", "its daemon is down (stopped at"}, []string{"ready"}},
		{"requested, its daemon not enabled", func(s *Snapshot) {
			d := running
			d.Settings.Enabled = false
			s.Daemons["n1"] = d
		}, []string{"requested, but daemon not enabled: nothing reboots this node until REBOOTMGR_ENABLED=true"}, []string{"ready"}},
		{"idle, its daemon not enabled", func(s *Snapshot) {
			d := running
			d.Settings.Enabled = false
			d.Status = "not enabled: set REBOOTMGR_ENABLED=true in /etc/default/rebootmgr, then systemctl restart rebootmgr"
			s.Daemons["n1"] = d
			delete(s.Requests, "n1")
		}, []string{"not enabled  daemon not enabled: nothing reboots this node until REBOOTMGR_ENABLED=true (on n1: set REBOOTMGR_ENABLED=true in /etc/default/rebootmgr, then systemctl restart rebootmgr)"}, []string{" ok"}},
		{"requested, no daemon", func(s *Snapshot) { delete(s.Daemons, "n1") }, []string{"requested, but nothing reboots it", "no daemon"}, []string{"ready"}},
		{"requested within its interval", func(s *Snapshot) {
			s.Groups[lock.DefaultGroup] = GroupState{Limit: lock.One, Lock: lock.Record{Version: lock.Version}, History: lately}
		},
			[]string{"blocked by interval"}, nil},
		{"idle within its interval: nothing is blocked", func(s *Snapshot) {
			s.Groups[lock.DefaultGroup] = GroupState{Limit: lock.One, Lock: lock.Record{Version: lock.Version}, History: lately}
			delete(s.Requests, "n1")
		}, []string{"n1    default  -          -         -      -      running  ok"}, []string{"blocked"}},
		{"idle, in maintenance", func(s *Snapshot) {
			delete(s.Requests, "n1")
			s.Maintenance["n1"] = "rebootmgr: rebooting n1"
		}, []string{"in maintenance: rebootmgr: rebooting n1"}, []string{" ok"}},
		{"its daemon waits for an operator: said once", func(s *Snapshot) {
			d := running
			d.State, d.Status = DaemonNeedsOperator, "waiting for an operator: the boot id b did not change; to resolve: rebootmgr unlock n1"
			s.Daemons["n1"] = d
		}, []string{"WAITS FOR AN OPERATOR: the boot id b did not change; run: rebootmgr unlock n1"}, []string{"waiting for an operator:"}},
		{"gone from the catalog, remembered by its service", func(s *Snapshot) {
			s.Members = map[string][]string{"galera": {"n1", "n9"}}
		}, []string{"n9 ", "not in Consul's catalog"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Snapshot{
				At:          t0,
				Requests:    map[string]Mark{"n1": {Value: "kernel"}},
				Nodes:       map[string]string{"n1": ""},
				Daemons:     map[string]Daemon{"n1": running},
				Maintenance: map[string]string{},
				Groups:      map[string]GroupState{},
			}
			tt.snap(&s)
			var out bytes.Buffer
			if err := WriteTable(&out, Compute(s), false); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.says {
				if !strings.Contains(out.String(), want) {
					t.Errorf("status does not say %q:\n%s", want, out.String())
				}
			}
			for _, not := range tt.not {
				if strings.Contains(out.String(), not) {
					t.Errorf("status says %q:\n%s", not, out.String())
				}
			}
		})
	}
}
