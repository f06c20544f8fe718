package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/internal/alerttest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// closedURL is an http URL on loopback where nothing listens.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// TestAlertsGate: while an alert the filter chooses fires in a real Prometheus, no reboot
// starts, and reboot, check and status say which alert holds it back (exit 8); an alert the
// filter leaves out, or one naming a node that holds a place, holds nothing back; an alert
// source that cannot be read holds reboots back unless the operator chose to go on.
func TestAlertsGate(t *testing.T) {
	n := dev(t)
	prom := alerttest.Prometheus(t,
		alerttest.Rule{Alert: "DiskFull", Expr: "vector(1)", Labels: map[string]string{"severity": "critical"}},
		alerttest.Rule{Alert: "NodeDown", Expr: "vector(1)", Labels: map[string]string{"instance": "n2.example.com:9100"}},
	)
	url := []string{"--alerts-url", prom}

	r := n.run("reboot", url...)
	n.expect(r, exitAlerts, `DiskFull{severity="critical"}`)
	if n.rebootCount() != 0 || len(n.lockRecord().Holders) != 0 {
		t.Fatalf("held back by an alert, the node rebooted or took a place: %s", r)
	}
	r = n.run("check", url...)
	n.expect(r, exitAlerts, "alerts    FAIL", `DiskFull{severity="critical"}`, `NodeDown{instance="n2.example.com:9100"}`)
	// status sees what asks through Consul (the file that asked reboot is the node's own).
	n.put(n.keys().RebootRequired(n.agent.Node), "kernel")
	r = n.run("status", url...)
	if r.code != 0 || !strings.Contains(r.stdout, `DiskFull{severity="critical"}`) {
		t.Fatalf("status does not show the alert that holds n1 back: %s", r)
	}

	// n2 holds a place: the alert naming it is its reboot's, and counts for nobody.
	putHolder(t, n, lock.Holder{Node: "n2", Phase: lock.Rebooting, Since: time.Now(), RebootStarted: time.Now()})
	r = n.run("check", append(url, "--alerts-filter", "NodeDown")...)
	if !strings.Contains(r.stdout, "alerts    pass") || !strings.Contains(r.stdout, "do not count: NodeDown") {
		t.Fatalf("an alert naming a node that holds a place holds n1 back: %s", r)
	}
	if _, err := n.kv().Delete(n.keys().Lock(), nil); err != nil {
		t.Fatal(err)
	}

	r = n.run("check", append(url, "--alerts-filter", "severity=warning")...)
	n.expect(r, 0, "alerts    pass", "no alert the filter chooses fires")

	down := closedURL(t)
	r = n.run("reboot", "--alerts-url", down)
	n.expect(r, exitAlerts, "the alert source cannot be read")
	r = n.run("check", "--alerts-url", down, "--alerts-ignore-unreachable")
	n.expect(r, 0, "reboots go on without it")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted")
	}
	r = n.run("reboot", "--alerts-url", down, "--alerts-ignore-unreachable")
	n.expect(r, 0)
	if n.rebootCount() != 1 {
		t.Fatalf("not rebooted: %s", r)
	}
}

// TestAlertsHoldTheDaemon: a daemon held back by an alert of a real Alertmanager looks again by
// itself (the source has no blocking query) and reboots once the alert is resolved; a silenced
// alert holds nothing back.
func TestAlertsHoldTheDaemon(t *testing.T) {
	n := dev(t)
	am := alerttest.Alertmanager(t)
	firing := map[string]string{"alertname": "Outage", "severity": "critical"}
	alerttest.Fire(t, am, firing)
	alerttest.Fire(t, am, map[string]string{"alertname": "Noise"})
	alerttest.Silence(t, am, "Noise")
	src := alerts.Source{URL: am + "/api/v2/alerts"}
	alerttest.WaitFor(t, func() bool { got, err := src.Firing(context.Background()); return err == nil && len(got) == 1 })
	writeFile(t, n.trigger, "")
	d := n.startDaemon("--alerts-url", am+"/api/v2/alerts", "--alerts-every", "100ms")
	fleettest.WaitSeen(t, d.Log.Seen("held back by alerts"), "the daemon held back by the alert")
	if !strings.Contains(d.Log.String(), "Outage") || strings.Contains(d.Log.String(), "Noise{") || n.rebootCount() != 0 {
		t.Fatalf("held back by the wrong alerts, or rebooted:\n%s", d.Log)
	}
	alerttest.Resolve(t, am, firing)
	waitFile(t, n.reboots)
}

// TestFleetlockAlertsGate: rebootmgr fleetlock takes the alert source from its settings (a
// flag, or REBOOTMGR_ALERTS_URL in its own file's environment): while an alert the filter
// chooses fires in a real Prometheus, a host's pre-reboot is refused 423 alerts_firing, naming
// it, and takes no place; a filter that leaves it out lets the host take its place; a filter
// that is no regular expression is a usage error.
func TestFleetlockAlertsGate(t *testing.T) {
	n := dev(t)
	prom := alerttest.Prometheus(t, alerttest.Rule{Alert: "DiskFull", Expr: "vector(1)", Labels: map[string]string{"severity": "critical"}})
	f := n.startFleetlock(map[string]string{"REBOOTMGR_ALERTS_URL": prom})
	code, r := f.zincati(t, "pre-reboot", "host-1", "default")
	if code != 423 || r.Kind != fleetlock.KindAlertsFiring || !strings.Contains(r.Value, `DiskFull{severity="critical"}`) {
		t.Fatalf("pre-reboot while an alert fires: %d %+v", code, r)
	}
	if len(n.lockRecord().Holders) != 0 {
		t.Fatalf("a host held back by an alert took a place: %+v", n.lockRecord())
	}
	other := n.startFleetlock(nil, "--alerts-url", prom, "--alerts-filter", "severity=warning")
	if code, r := other.zincati(t, "pre-reboot", "host-1", "default"); code != 200 {
		t.Fatalf("pre-reboot, the alert left out by the filter: %d %+v", code, r)
	}
	n.expect(n.run("fleetlock", "--listen", "127.0.0.1:0", "--insecure-no-auth", "--alerts-url", prom, "--alerts-filter", "("), exitUsage, "--alerts-filter")
}
