package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestDaemonRebootRequiredCommand: a reboot-required command that starts succeeding reboots the
// node within one tick of the daemon (no event announces it: the tick runs it).
func TestDaemonRebootRequiredCommand(t *testing.T) {
	n := dev(t)
	marker := filepath.Join(n.dir, "kernel-updated")
	d := n.startDaemon("--reboot-required-command", "test -e "+marker, "--interval", "300ms")
	// The command said no at least once before it starts succeeding.
	fleettest.WaitSeen(t, d.Log.SeenN("sources=[tick]", 2), "two ticks")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted while the command said no")
	}
	ticks := d.Log.Count("sources=[tick]")
	writeFile(t, marker, "")
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot")
	log := d.Log.String()
	before := log[:strings.Index(log, `msg="reboot required"`)]
	if got := strings.Count(before, "sources=[tick]"); got > ticks+1 {
		t.Fatalf("the reboot came %d ticks after the command started succeeding, want within one:\n%s", got-ticks, log)
	}
	if !strings.Contains(log, `by="command test -e `+marker+`"`) {
		t.Fatalf("the log does not say the command asked:\n%s", log)
	}
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
}

// TestDaemonRebootRequiredCommandFails: a command that hangs is ended at its timeout, and one
// that cannot run fails; tick after tick, neither ever reboots the node, and each failure is
// logged.
func TestDaemonRebootRequiredCommandFails(t *testing.T) {
	for _, tt := range []struct {
		name, command, logged string
	}{
		{"hangs", "sleep 1000 & sleep 1000", "reboot-required command timed out"},
		{"cannot start", "/nonexistent/needs-restarting -r", "reboot-required command cannot run"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			d := n.startDaemon("--reboot-required-command", tt.command, "--reboot-required-command-timeout", "300ms", "--interval", "300ms")
			fleettest.WaitSeen(t, d.Log.SeenN(tt.logged, 3), "three failures of the command")
			d.stop()
			if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil {
				t.Fatalf("a failing command rebooted or took the lock:\n%s", d.Log)
			}
			if !strings.Contains(d.Log.String(), "level=WARN") {
				t.Fatalf("the failure was not logged as a warning:\n%s", d.Log)
			}
		})
	}
}

// TestSignalDidNotClear: a reboot-required command that still says so after the reboot it asked
// for does not reboot the node again within --min-reboot-interval: the daemon says so once
// (a warning, a notification, an entry in the history, logged as that gate), however many ticks
// see it, and check
// shows the command's verdict and the gate, exiting as reboot would (3, not now).
func TestSignalDidNotClear(t *testing.T) {
	n := dev(t)
	flags := []string{"--reboot-required-command", "true", "--min-reboot-interval", "1h", "--interval", "300ms"}
	d := n.startDaemon(flags...)
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot")
	d.stop()

	n.boot()
	d = n.startDaemon(flags...)
	fleettest.WaitSeen(t, d.Log.Seen("idle: reboot finished"), "the post-boot part")
	fleettest.WaitSeen(t, d.Log.Seen("the reboot signal did not clear"), "the report")
	ticks := d.Log.Count("sources=[tick]")
	fleettest.WaitSeen(t, d.Log.SeenN("sources=[tick]", ticks+3), "three more ticks")
	d.stop()
	if got := n.rebootCount(); got != 1 {
		t.Fatalf("reboot command ran %d times", got)
	}
	if got := d.Log.Count(`level=WARN msg="the reboot signal did not clear`); got != 1 {
		t.Fatalf("warned %d times, want once:\n%s", got, d.Log)
	}
	// The hold is logged as the gate it is: the min reboot interval, no reboot window.
	if d.Log.Count(`gate="min reboot interval"`) == 0 || d.Log.Count("outside the reboot window") != 0 {
		t.Fatalf("the hold is not logged as the min reboot interval's:\n%s", d.Log)
	}
	pair := n.get(n.keys().GroupHistory("default"))
	if pair == nil {
		t.Fatal("no history")
	}
	l, err := history.Decode(pair.Value)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, e := range l.Entries {
		outcomes = append(outcomes, e.Outcome)
	}
	if strings.Join(outcomes, ",") != history.Finished+","+history.SignalNotCleared {
		t.Fatalf("history: %q", outcomes)
	}

	check := n.run("check", flags[:4]...)
	n.expect(check, exitWindow, "did not clear")
	for _, want := range []string{"command true: exit 0: reboot required", "interval  FAIL"} {
		if !strings.Contains(check.stdout, want) {
			t.Fatalf("check does not show %q:\n%s", want, check.stdout)
		}
	}
	n.expect(n.run("reboot", append([]string{"--check-triggers"}, flags[:4]...)...), exitWindow, "did not clear")
	if n.rebootCount() != 1 {
		t.Fatal("rebooted again")
	}
	// The history's new outcome reads as any other.
	hist := n.run("history", "--json")
	var entries []history.Entry
	if err := json.Unmarshal([]byte(hist.stdout), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("history --json: %v: %s", err, hist)
	}
}

// TestRebootRequiredCommandSettings: the commands come from the environment or the
// configuration file as well (one a line), and check shows each one's verdict.
func TestRebootRequiredCommandSettings(t *testing.T) {
	n := dev(t)
	file := filepath.Join(n.dir, "rebootmgr")
	writeFile(t, file, "REBOOTMGR_REBOOT_REQUIRED_COMMAND=\"! true\\nexit 0\"\n")
	for _, environ := range []map[string]string{
		{"REBOOTMGR_CONFIG": file},
		{"REBOOTMGR_REBOOT_REQUIRED_COMMAND": "! true\nexit 0"},
	} {
		r := n.runWith(t.Context(), environ, &fleettest.Log{}, "check")
		for _, want := range []string{"reboot requested by command exit 0", "command ! true: exit 1: no reboot required", "command exit 0: exit 0: reboot required"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("%v: check does not show %q:\n%s", environ, want, r)
			}
		}
		// config keeps the list on its line, quoted as the file takes it.
		r = n.runWith(t.Context(), environ, &fleettest.Log{}, "config")
		if !strings.Contains(r.stdout, `--reboot-required-command "! true\nexit 0"`) {
			t.Fatalf("%v: config shows:\n%s", environ, r.stdout)
		}
	}
}
