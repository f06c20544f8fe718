package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// closedWindow is a weekly window of one minute twelve hours from now: closed now, whatever
// the time of the test.
func closedWindow() string {
	at := time.Now().UTC().Add(12 * time.Hour)
	return fmt.Sprintf("%s %s-%s UTC", at.Format("Mon"), at.Format("15:04"), at.Add(time.Minute).Format("15:04"))
}

// TestCheckAgreesWithReboot: for every gate, check exits as a run of the pipeline would and
// names the gate; the gates come from the same code.
func TestCheckAgreesWithReboot(t *testing.T) {
	for _, tt := range []struct {
		name    string
		setup   func(t *testing.T, n *testNode)
		flags   []string
		code    int
		mention string
	}{
		{"every gate passes", func(*testing.T, *testNode) {}, nil, 0, ""},
		{"outside the reboot window", func(*testing.T, *testNode) {}, []string{"--reboot-window", closedWindow()}, exitWindow, "outside the reboot window"},
		{"a blackout date", func(*testing.T, *testNode) {}, []string{"--blackout", time.Now().UTC().Format("2006-01-02") + "," + time.Now().Format("2006-01-02")}, exitWindow, "outside"},
		{"within the cooldown", func(t *testing.T, n *testNode) {
			now := time.Now().UTC()
			l := history.Log{Version: 1}.Append(history.Entry{Node: "n9", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished})
			data, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			n.put(n.keys().GroupHistory("default"), string(data))
		}, []string{"--cooldown", "1h"}, exitWindow, "cooldown"},
		{"within the min reboot interval", func(t *testing.T, n *testNode) {
			now := time.Now().UTC()
			l := history.Log{Version: 1}.Append(history.Entry{Node: "n1", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished})
			data, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			n.put(n.keys().GroupHistory("default"), string(data))
		}, []string{"--min-reboot-interval", "1h"}, exitWindow, "min reboot interval"},
		{"did not reboot", func(t *testing.T, n *testNode) {
			boot := fmt.Sprintf("boot-%d", n.boots)
			putHolder(t, n, lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: time.Now(), BootID: boot, RebootStarted: time.Now()})
			writeFile(t, rebootNote(n.lockFile), boot+"\n") // the reboot command ran
		}, nil, exitNotRebooted, "did not change"},
		{"disabled", func(t *testing.T, n *testNode) { n.put(n.keys().Disabled("n1"), "disk swap") }, nil, exitDisabled, "disk swap"},
		{"stopped", func(t *testing.T, n *testNode) { n.put(n.keys().Stop(), "freeze") }, nil, exitStopped, "freeze"},
		{"lock held", func(t *testing.T, n *testNode) {
			putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Preparing, Since: time.Now()})
		}, nil, exitLockHeld, "n7"},
		{"unhealthy", func(t *testing.T, n *testNode) { n.agent.SetService("galera", "critical") }, nil, exitUnhealthy, "galera"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
			tt.setup(t, n)
			check := n.run("check", tt.flags...)
			run := n.run("reboot", append([]string{"--dry-run"}, tt.flags...)...)
			if check.code != run.code || check.code != tt.code {
				t.Fatalf("check exits %d, reboot %d, want %d\ncheck: %s\nreboot: %s", check.code, run.code, tt.code, check, run)
			}
			if tt.code != 0 {
				n.expect(check, tt.code, tt.mention)
			}
		})
	}
}

// TestConfigurationFile: a setting in the configuration file only (a reboot window) is
// honoured by check as by reboot, the environment wins over the file, and config says where
// each setting comes from.
func TestConfigurationFile(t *testing.T) {
	n := dev(t)
	file := filepath.Join(n.dir, "rebootmgr.default")
	writeFile(t, file, fmt.Sprintf("# the node's settings\nREBOOTMGR_REBOOT_WINDOW=%q\nREBOOTMGR_COOLDOWN=5m\n", closedWindow()))
	env := map[string]string{"REBOOTMGR_CONFIG": file}
	n.expect(n.runWith(t.Context(), env, &fleettest.Log{}, "check"), exitWindow, "outside the reboot window")
	n.expect(n.runWith(t.Context(), env, &fleettest.Log{}, "reboot"), exitWindow, "outside the reboot window")
	if n.rebootCount() != 0 {
		t.Fatal("rebooted outside the window set in the configuration file")
	}
	env["REBOOTMGR_REBOOT_WINDOW"] = "Mon-Sun 00:00-24:00 UTC"
	n.expect(n.runWith(t.Context(), env, &fleettest.Log{}, "check"), 0, "may reboot now")
	r := n.runWith(t.Context(), env, &fleettest.Log{}, "config")
	n.expect(r, 0, "--cooldown", "5m0s", "("+file+")", "(environment)")

	writeFile(t, file, "REBOOTMGR_COOLDOWN\n")
	n.expect(n.runWith(t.Context(), env, &fleettest.Log{}, "check"), exitUsage, file+":1", "NAME=VALUE")
	env["REBOOTMGR_CONFIG"] = filepath.Join(n.dir, "missing")
	n.expect(n.runWith(t.Context(), env, &fleettest.Log{}, "check"), exitUsage, "missing")
}
