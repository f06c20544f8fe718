package gate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestAlertsGate judges the alerts gate: it holds every node back while an alert the filter
// chose fires, or the source cannot be read (unless the operator chose to go on), and says when
// it looks again; an alert that names a node holding a place (its reboot raises it) does not
// hold the others back; without a source the gate does not apply.
func TestAlertsGate(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	down := alerts.Alert{Name: "NodeDown", Labels: map[string]string{"alertname": "NodeDown", "instance": "db-2:9100"}, Nodes: []string{"db-2"}}
	disk := alerts.Alert{Name: "DiskFull", Labels: map[string]string{"alertname": "DiskFull"}}
	holding := place.View{Fleet: lock.Fleet{Holders: map[string]string{"db-2": "default"}}}
	unreachable := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		found   gate.AlertsFound
		view    *place.View
		skipped bool
		pass    bool
		says    string
	}{
		{name: "no alert source", skipped: true, pass: true},
		{name: "nothing fires", found: gate.AlertsFound{Source: "http://prom"}, pass: true, says: "no alert the filter chooses fires"},
		{name: "an alert fires", found: gate.AlertsFound{Source: "http://prom", Firing: []alerts.Alert{disk}}, says: "1 alert(s) fire: DiskFull{}"},
		{name: "an alert of a node holding a place", found: gate.AlertsFound{Source: "http://prom", Firing: []alerts.Alert{down}}, view: &holding, pass: true, says: "do not count: NodeDown"},
		{name: "and another that fires", found: gate.AlertsFound{Source: "http://prom", Firing: []alerts.Alert{down, disk}}, view: &holding, says: "1 alert(s) fire: DiskFull{}"},
		{name: "nobody holds a place", found: gate.AlertsFound{Source: "http://prom", Firing: []alerts.Alert{down}}, view: &place.View{}, says: `NodeDown{instance="db-2:9100"}`},
		{name: "unreachable", found: gate.AlertsFound{Source: "http://prom", Err: unreachable}, says: "cannot be read: reboots are held back"},
		{name: "unreachable, ignored", found: gate.AlertsFound{Source: "http://prom", Err: unreachable, IgnoreUnreachable: true}, pass: true, says: "reboots go on without it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &gate.State{Node: "db-1", Now: now, Alerts: gate.Known(tc.found)}
			s.View = gate.Failed[place.View](errors.New("lock unreadable"))
			if tc.view != nil {
				s.View = gate.Known(*tc.view)
			}
			if tc.found.Source != "" {
				tc.found.Every = time.Minute
				s.Alerts = gate.Known(tc.found)
			}
			v := gate.Named(gate.Alerts).Judged(s)
			if v.Skipped != tc.skipped || v.Pass != tc.pass {
				t.Fatalf("verdict %+v, want skipped %v, pass %v", v, tc.skipped, tc.pass)
			}
			if !strings.Contains(strings.Join(v.Evidence, "\n"), tc.says) {
				t.Fatalf("evidence %q does not say %q", v.Evidence, tc.says)
			}
			if tc.pass {
				return
			}
			if !errors.Is(v.Err, ending.ErrAlerts) || ending.GateName(v.Err) != gate.Alerts {
				t.Fatalf("error %v: not the alerts gate's", v.Err)
			}
			if until := ending.Until(v.Err); !until.Equal(now.Add(time.Minute)) {
				t.Fatalf("looks again at %s, want a minute later", until)
			}
		})
	}
}
