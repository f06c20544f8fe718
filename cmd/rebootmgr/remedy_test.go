package main

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// printedCommand is the rebootmgr command a remedy names after marker ("then on n1: "), up to
// the explanation that follows it in parentheses.
func printedCommand(t *testing.T, remedy, marker string) []string {
	t.Helper()
	_, cmd, ok := strings.Cut(remedy, marker)
	if !ok {
		t.Fatalf("the remedy names no command after %q: %s", marker, remedy)
	}
	cmd, _, _ = strings.Cut(cmd, " (")
	args := strings.Fields(cmd)
	if len(args) < 2 || args[0] != "rebootmgr" {
		t.Fatalf("the remedy's command is not a rebootmgr command: %q", cmd)
	}
	return args[1:]
}

// TestDidNotRebootRemedyWorksAsPrinted: a node whose reboot did not happen waits for an
// operator, and status names the command that resolves it. That very command, run on the node
// with the shipped operator policy's token and without --force, is accepted (its daemon knows
// that the node did not reboot), gives the place back, withdraws the request (which would start
// the same failing reboot at once) and ends the maintenance; the daemon then idles.
func TestDidNotRebootRemedyWorksAsPrinted(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	daemonToken := aclToken(t, agent, policy(t, "rebootmgr-daemon.hcl", "n1"))
	operatorToken := aclToken(t, agent, policy(t, "rebootmgr-operator.hcl", ""))
	t.Setenv("CONSUL_HTTP_TOKEN", daemonToken)
	// The daemon comes back on the same boot past the time a reboot takes.
	d := n.startDaemon("--reboot-timeout", "200ms")
	n.put(n.keys().RebootRequired("n1"), "kernel")
	r := <-d.done
	d.done <- r
	n.expect(r, exitError, "still running after the reboot command")
	if !n.inMaintenance() {
		t.Fatal("the reboot did not put the node in maintenance")
	}
	d = n.startDaemon("--clock-offset", "10m")
	fleettest.WaitSeen(t, d.Log.Seen("the reboot did not happen"), "the report")
	waitDaemonCheck(t, n, "the daemon's check in warning", func(c *api.HealthCheck) bool { return c.Status == api.HealthWarning })

	t.Setenv("CONSUL_HTTP_TOKEN", operatorToken)
	row := statusOf(t, n, "n1")
	if row.Operator == nil {
		t.Fatalf("status: the node does not wait for an operator: %+v", row)
	}
	args := printedCommand(t, row.Operator.Command, "then on n1: ")
	r = n.run(args[0], args[1:]...)
	n.expect(r, 0, "released the reboot lock of n1", "withdrew the reboot request of n1", "ended the maintenance mode of n1")
	if n.get(n.keys().RebootRequired("n1")) != nil || n.inMaintenance() {
		t.Fatalf("left behind after %v: request %v, maintenance %v", args, n.get(n.keys().RebootRequired("n1")), n.inMaintenance())
	}
	fleettest.WaitSeen(t, d.Log.Seen("idle: no reboot required"), "the daemon idle after the unlock")
	if n.rebootCount() != 1 {
		t.Fatalf("reboot commands run: %d, want 1 (the one that did not reboot)", n.rebootCount())
	}
}

// TestCheckNeverClaimsWhatItCannotKnow: check --node for a node whose daemon published nothing
// says that its window, interval and cooldown are not known, and never that it may reboot now.
func TestCheckNeverClaimsWhatItCannotKnow(t *testing.T) {
	n := dev(t)
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr"}, "passing")
	r := n.run("check", "--node", "n2")
	n.expect(r, 0, "not known")
	if strings.Contains(r.stdout, "may reboot now") {
		t.Fatalf("check claims what it cannot know:\n%s", r.stdout)
	}
}
