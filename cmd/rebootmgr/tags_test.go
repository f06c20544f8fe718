package main

import (
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

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
