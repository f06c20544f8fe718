package main

import (
	"context"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestStatusSaysNotEnabled: a daemon that is not enabled registers itself in Consul as such (it
// wrote nothing, so status could only show no daemon, or a node ready to reboot): status says
// that nothing reboots the node until REBOOTMGR_ENABLED=true, with the daemon's own remedy,
// idle or requested; check says so and ends as reboot would (exit 101); stopped, it shows down.
// It reboots nothing.
func TestStatusSaysNotEnabled(t *testing.T) {
	n := dev(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() { done <- n.runWith(ctx, nil, log, "daemon", "--enabled=false") }()
	defer func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", log)
		}
	}()
	waitDaemonCheck(t, n, "the daemon's check passes", func(c *api.HealthCheck) bool { return c.Status == api.HealthPassing })
	row := statusOf(t, n, "n1")
	if row.Daemon == nil || row.Daemon.Enabled || row.Daemon.State != "running" {
		t.Fatalf("status of a node whose daemon is not enabled: daemon %+v", row.Daemon)
	}
	n.expect(n.run("status"), 0, "not enabled  daemon not enabled: "+fleet.NotEnabledSays+" (on n1: the command line says --enabled=false)")
	n.expect(n.run("check", "--node", "n1"), exitDisabled, "daemon    not enabled  "+fleet.NotEnabledSays)
	n.put(n.keys().RebootRequired("n1"), "kernel")
	n.expect(n.run("status"), 0, "requested, but daemon not enabled: "+fleet.NotEnabledSays)
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("the daemon did not stop cleanly: %s", r)
	}
	waitDaemonCheck(t, n, "the daemon's check critical", func(c *api.HealthCheck) bool { return c.Status == api.HealthCritical })
	if got := statusOf(t, n, "n1").Daemon; got == nil || got.State != "down" {
		t.Fatalf("a daemon that is not enabled, stopped: %+v", got)
	}
	if n.rebootCount() != 0 {
		t.Fatal("a daemon that is not enabled rebooted its node")
	}
}
