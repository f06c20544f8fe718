package fleettest

import "testing"

// TestFleet: a node's checks follow the faults the test sets, and a node's daemon reboots it
// on request and finishes after the harness boots it again.
func TestFleet(t *testing.T) {
	f := New(t, OpenStack(2, 0, 1), Options{Binary: Build(t, true), DaemonArgs: []string{"--settle", "0s"}})
	gw1, cmp1 := f.Nodes[0], f.Nodes[2]
	if len(f.Groups()) != 2 || len(f.Running("gateway")) != 2 || len(f.Running("dkms")) != 3 {
		t.Fatalf("groups %v, gateways %d", f.Groups(), len(f.Running("gateway")))
	}
	gw1.SetFailing("gateway", true)
	gw1.Agent.WaitCheck(gw1.Name, "gateway", "service:gateway", "critical")
	gw1.SetFailing("gateway", false)
	gw1.Agent.WaitCheck(gw1.Name, "gateway", "service:gateway", "passing")

	cmp1.Start()
	cmp1.Request()
	WaitSeen(t, cmp1.Daemon.Log.Seen("msg=rebooting"), "the compute's reboot")
	if cmp1.RebootCount() != 1 || cmp1.VMs() != 0 {
		t.Fatalf("reboots %d, VMs %d", cmp1.RebootCount(), cmp1.VMs())
	}
	if h, ok := cmp1.Lock().Holder(cmp1.Name); !ok || h.Phase != "rebooting" {
		t.Fatalf("lock of group %s: %+v", cmp1.Group, cmp1.Lock())
	}
	cmp1.Daemon.Kill9()
	cmp1.Boot()
	cmp1.Start()
	WaitSeen(t, cmp1.Daemon.Log.Seen("idle: reboot finished"), "the post-boot part")
	if cmp1.Requested() || len(cmp1.Lock().Holders) > 0 {
		t.Fatalf("request or lock left after the reboot: %+v", cmp1.Lock())
	}
	if cmp1.VMs() != VMsPerCompute {
		t.Fatalf("VMs after the post-boot tasks: %d", cmp1.VMs())
	}
}
