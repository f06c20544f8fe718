package main

import (
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestMalformedTag: a rule tag that cannot be read stops reboot and check alike with exit 1 (a
// configuration error, as the exit codes say), naming the service and the tag, taking no lock;
// the daemon logs it at ERROR as a configuration error, and once the tag is fixed (an event of
// the health watch) the node reboots.
func TestMalformedTag(t *testing.T) {
	tests := []struct {
		name string
		tags []string
		says string
	}{
		{"not a number", []string{"min_passing=abc"}, `malformed tag "min_passing=abc"`},
		{"negative", []string{"max_failing=-1"}, `malformed tag "max_failing=-1"`},
		{"given twice", []string{"min_passing=1", "min_passing=3"}, "given twice"},
		{"local_only with a quorum rule", []string{"local_only", "min_passing=1"}, "malformed tag local_only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := dev(t)
			n.agent.RegisterService("web", append([]string{"rebootmgr"}, tt.tags...), "passing")
			for _, command := range []string{"reboot", "check"} {
				n.expect(n.run(command), exitError, "web", tt.says)
			}
			if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
				t.Fatal("rebooted, or kept the lock, with a malformed tag")
			}

			n.put(n.keys().RebootRequired("n1"), "kernel")
			d := n.startDaemon("--interval", "1h")
			fleettest.WaitSeen(t, d.Log.Seen("level=ERROR msg=\"configuration error, waiting for the tags to be fixed"), "the configuration error")
			if d.Log.Count("waiting for health") > 0 {
				t.Fatalf("a malformed tag logged as waiting for health:\n%s", d.Log)
			}
			n.agent.RegisterService("web", []string{"rebootmgr", "min_passing=1"}, "passing")
			fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot once the tag is fixed")
		})
	}
}

// TestTagChangeWakesTheDaemon: the rules are in the tags, so a tag changed is an event of the
// health watch: a node held back by min_passing=2 with one instance starts the moment the rule
// becomes min_passing=1, without waiting for the tick.
func TestTagChangeWakesTheDaemon(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("web", []string{"rebootmgr", "min_passing=2"}, "passing")
	n.put(n.keys().RebootRequired("n1"), "kernel")
	d := n.startDaemon("--interval", "1h")
	fleettest.WaitSeen(t, d.Log.Seen("waiting for health"), "the node held back by min_passing=2")
	n.agent.RegisterService("web", []string{"rebootmgr", "min_passing=1"}, "passing")
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot once the rule allows it")
}

// TestPythonSideTags: a service tagged only rebootmgr_preboot or rebootmgr_postboot (the Python
// rebootmgr's tags of a service that gated one side of the reboot) is never silently left out:
// reboot and check refuse it with exit 1, naming the service, the tag and the two ways on,
// and reboot nothing. Tagged rebootmgr as well, it gates both sides, as it did in the Python
// rebootmgr, and the node reboots.
func TestPythonSideTags(t *testing.T) {
	for _, tt := range []struct{ tag, side string }{
		{"rebootmgr_preboot", "before"},
		{"rebootmgr_postboot", "after"},
	} {
		t.Run(tt.tag, func(t *testing.T) {
			t.Parallel()
			n := dev(t)
			n.agent.RegisterService("nova-compute", []string{tt.tag}, "passing")
			for _, command := range []string{"reboot", "check"} {
				n.expect(n.run(command), exitError, "nova-compute", `"`+tt.tag+`"`, "gated only the checks "+tt.side+" the reboot", "add the tag rebootmgr", "or remove "+tt.tag)
			}
			if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
				t.Fatal("rebooted, or kept the lock, with a service tagged " + tt.tag)
			}
			n.agent.RegisterService("nova-compute", []string{"rebootmgr", tt.tag}, "passing")
			n.expect(n.run("reboot"), 0)
			if n.rebootCount() != 1 {
				t.Fatal("did not reboot with the service tagged rebootmgr too")
			}
		})
	}
}
