package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/gate"
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
// names the gate, and status --json shows the same gate as the node's first blocking one; the
// gates come from the same code.
func TestCheckAgreesWithReboot(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	for _, tt := range []struct {
		name    string
		setup   func(t *testing.T, n *testNode)
		flags   []string
		code    int
		gate    string // status's first blocking gate ("" for none)
		mention string
	}{
		{"every gate passes", func(*testing.T, *testNode) {}, nil, 0, "", ""},
		{"outside the reboot window", func(*testing.T, *testNode) {}, []string{"--reboot-window", closedWindow()}, exitWindow, gate.Window, "outside the reboot window"},
		{"a blackout date", func(*testing.T, *testNode) {}, []string{"--blackout", time.Now().UTC().Format("2006-01-02") + "," + time.Now().Format("2006-01-02")}, exitWindow, gate.Window, "outside"},
		{"within the cooldown", func(t *testing.T, n *testNode) {
			now := time.Now().UTC()
			l := history.Log{Version: 1}.Append(history.Entry{Node: "n9", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished})
			data, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			n.put(n.keys().GroupHistory("default"), string(data))
		}, []string{"--cooldown", "1h"}, exitWindow, gate.Cooldown, "cooldown"},
		{"within the min reboot interval", func(t *testing.T, n *testNode) {
			now := time.Now().UTC()
			l := history.Log{Version: 1}.Append(history.Entry{Node: "n1", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished})
			data, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			n.put(n.keys().GroupHistory("default"), string(data))
		}, []string{"--min-reboot-interval", "1h"}, exitWindow, gate.Interval, "min reboot interval"},
		{"did not reboot", func(t *testing.T, n *testNode) {
			boot := fmt.Sprintf("boot-%d", n.boots)
			putHolder(t, n, lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: time.Now(), BootID: boot, RebootStarted: time.Now()})
			writeFile(t, rebootNote(n.lockFile), boot+"\n") // the reboot command ran
		}, nil, exitNotRebooted, gate.Rebooted, "did not change"},
		{"disabled", func(t *testing.T, n *testNode) { n.put(n.keys().Disabled("n1"), "disk swap") }, nil, exitDisabled, gate.Disabled, "disk swap"},
		{"stopped", func(t *testing.T, n *testNode) { n.put(n.keys().Stop(), "freeze") }, nil, exitStopped, gate.Stop, "freeze"},
		{"stopped by the circuit breaker", func(t *testing.T, n *testNode) {
			n.put(n.keys().GroupStop("default"), "circuit breaker: 3 failed reboots within 1h0m0s: n4, n5, n6; look, then rebootmgr resume")
		}, nil, exitStopped, gate.Stop, "circuit breaker"},
		{"a holder past its deadline", func(t *testing.T, n *testNode) {
			putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Rebooting, Since: past, RebootStarted: past, Deadline: past.Add(30 * time.Minute)})
		}, nil, exitStopped, gate.Stop, "did not finish its reboot by its deadline"},
		{"lock held", func(t *testing.T, n *testNode) {
			putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Preparing, Since: time.Now()})
		}, nil, exitLockHeld, gate.Lock, "n7"},
		{"unhealthy", func(t *testing.T, n *testNode) { n.agent.SetService("galera", "critical") }, nil, exitUnhealthy, gate.Health, "galera"},
		{"unhealthy, with stay-green", func(t *testing.T, n *testNode) { n.agent.SetService("galera", "critical") }, []string{"--stay-green", "1m"}, exitUnhealthy, gate.Health, "galera"},
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
			row := statusOf(t, n, "n1", tt.flags...)
			switch {
			case tt.gate == "" && row.Blocked != nil:
				t.Fatalf("status: blocked by %+v, check and reboot pass", row.Blocked)
			case tt.gate != "" && (row.Blocked == nil || row.Blocked.Gate != tt.gate || row.Blocked.Reason == ""):
				t.Fatalf("status: blocked by %+v, want gate %q with its reason", row.Blocked, tt.gate)
			}
		})
	}
}

// statusOf is node's row in status --json, run with flags.
func statusOf(t *testing.T, n *testNode, node string, flags ...string) fleet.Node {
	t.Helper()
	r := n.run("status", append([]string{"--json"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("status: %s", r)
	}
	var st fleet.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	for _, row := range st.Nodes {
		if row.Node == node {
			return row
		}
	}
	t.Fatalf("status shows no node %s:\n%s", node, r.stdout)
	return fleet.Node{}
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
	st := n.runWith(t.Context(), env, &fleettest.Log{}, "status", "--json")
	n.expect(st, 0, `"gate": "window"`, `"next_window"`)
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
