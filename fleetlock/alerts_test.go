package fleetlock

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/internal/alerttest"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// firing are the names of the alerts src reads as firing now.
func firing(t *testing.T, src *gate.AlertSource) []string {
	t.Helper()
	got, err := src.Firing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range got {
		out = append(out, a.Name)
	}
	slices.Sort(out)
	return out
}

// TestFleetLockHeldByAlerts: with an alert source (a real Alertmanager), a host takes no place
// while an alert fires there: the pre-reboot is refused 423 alerts_firing, naming the alert, and
// writes nothing (no place, no queue). An alert naming a host that holds a place does not count
// (its reboot raises it), and counts once that host gave its place back. The holder asks again
// and gives its place back under the alerts, as a node finishes its reboot whatever fires. Once
// the alerts are resolved a host takes its place. A source that cannot be read holds every host
// back (503 alerts_unavailable, its address left out), unless the server goes on without it.
func TestFleetLockHeldByAlerts(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	am := alerttest.Alertmanager(t)
	src := &gate.AlertSource{Source: alerts.Source{URL: am + "/api/v2/alerts"}}
	base := serveLocks(t, &Locks{Client: c, Keys: keys, Alerts: src}, nil)
	put(t, c, keys.GroupLimit(lock.DefaultGroup), "2")
	post(t, base, "pre-reboot", zincatiBody("h-1", "default"), nil).is(t, 200, "")

	outage := map[string]string{"alertname": "Outage", "severity": "critical"}
	own := map[string]string{"alertname": "HostDown", "node": "h-1"}
	alerttest.Fire(t, am, outage)
	alerttest.Fire(t, am, own)
	alerttest.WaitFor(t, func() bool { return slices.Equal(firing(t, src), []string{"HostDown", "Outage"}) })
	a := post(t, base, "pre-reboot", zincatiBody("h-2", "default"), nil)
	a.is(t, 423, KindAlertsFiring, `Outage{severity="critical"}`)
	if strings.Contains(a.refusal.Value, "HostDown") {
		t.Fatalf("an alert naming a host that holds a place holds h-2 back: %s", a)
	}
	if rec := lockOf(t, c, lock.DefaultGroup); len(rec.Holders) != 1 || rec.Holders[0].Node != "h-1" {
		t.Fatalf("a host held back by alerts took a place: %+v", rec.Holders)
	}
	if q := queueOf(t, c, lock.DefaultGroup); len(q.Entries) != 0 {
		t.Fatalf("a host held back by alerts joined the queue: %+v", q.Entries)
	}
	post(t, base, "pre-reboot", zincatiBody("h-1", "default"), nil).is(t, 200, "")
	post(t, base, "steady-state", zincatiBody("h-1", "default"), nil).is(t, 200, "")
	if rec := lockOf(t, c, lock.DefaultGroup); len(rec.Holders) != 0 {
		t.Fatalf("h-1 did not give its place back under the alerts: %+v", rec.Holders)
	}

	alerttest.Resolve(t, am, outage)
	alerttest.WaitFor(t, func() bool { return slices.Equal(firing(t, src), []string{"HostDown"}) })
	post(t, base, "pre-reboot", zincatiBody("h-2", "default"), nil).is(t, 423, KindAlertsFiring, `HostDown{node="h-1"}`)
	alerttest.Resolve(t, am, own)
	alerttest.WaitFor(t, func() bool { return len(firing(t, src)) == 0 })
	post(t, base, "pre-reboot", zincatiBody("h-2", "default"), nil).is(t, 200, "")

	down := "http://" + closedAddr(t)
	unread := serveLocks(t, &Locks{Client: c, Keys: keys, Alerts: &gate.AlertSource{Source: alerts.Source{URL: down}}}, nil)
	a = post(t, unread, "pre-reboot", zincatiBody("h-3", "default"), nil)
	a.is(t, 503, KindAlertsUnavailable, "cannot be read")
	saysNothingInternal(t, a, agent.HTTPAddr, down)
	goOn := serveLocks(t, &Locks{Client: c, Keys: keys, Alerts: &gate.AlertSource{Source: alerts.Source{URL: down}, IgnoreUnreachable: true}}, nil)
	post(t, goOn, "pre-reboot", zincatiBody("h-3", "default"), nil).is(t, 200, "")
}

// queueOf is group's queue as Consul holds it (its record and its asks).
func queueOf(t *testing.T, client *api.Client, group string) lock.Queue {
	t.Helper()
	v, err := (&store.Consul{Client: client, Keys: keys, Group: group}).View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v.Queue
}
