package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// agreeCase is a state of a node made for one gate to hold it back: setup writes it, flags are
// the node's settings, mention is what the reason says; asked runs reboot as a daemon does,
// acting only on a request (check and status look at the requests always).
type agreeCase struct {
	name    string
	setup   func(t *testing.T, n *testNode)
	flags   []string
	mention string
	asked   bool
}

// agreeCases are, for each gate of the list that can hold a node back at one moment, states
// that make it do so.
func agreeCases() map[string][]agreeCase {
	past := time.Now().Add(-time.Hour)
	none := func(*testing.T, *testNode) {}
	finished := func(node string) func(t *testing.T, n *testNode) {
		return func(t *testing.T, n *testNode) {
			now := time.Now().UTC()
			l := history.Log{Version: 1}.Append(history.Entry{Node: node, Start: now.Add(-time.Minute), End: now, Outcome: history.Finished})
			data, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			n.put(n.keys().GroupHistory("default"), string(data))
		}
	}
	return map[string][]agreeCase{
		gate.Stop: {
			{"stopped", func(t *testing.T, n *testNode) { n.put(n.keys().Stop(), "freeze") }, nil, "freeze", false},
			{"stopped by the circuit breaker", func(t *testing.T, n *testNode) {
				n.put(n.keys().GroupStop("default"), "circuit breaker: 3 failed reboots within 1h0m0s: n4, n5, n6; look, then rebootmgr resume")
			}, nil, "circuit breaker", false},
			{"a holder past its deadline", func(t *testing.T, n *testNode) {
				putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Rebooting, Since: past, RebootStarted: past, Deadline: past.Add(30 * time.Minute)})
			}, nil, "did not finish its reboot by its deadline", false},
		},
		gate.Rebooted: {{"did not reboot", func(t *testing.T, n *testNode) {
			boot := fmt.Sprintf("boot-%d", n.boots)
			ago := time.Now().Add(-10 * time.Minute)
			putHolder(t, n, lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: ago, BootID: boot, RebootStarted: ago})
			writeFile(t, rebootNote(n.lockFile), boot+"\n") // the reboot command ran
		}, nil, "did not change", false}},
		gate.Disabled: {{"disabled", func(t *testing.T, n *testNode) { n.put(n.keys().Disabled("n1"), "disk swap") }, nil, "disk swap", false}},
		gate.Window: {
			{"outside the reboot window", none, []string{"--reboot-window", closedWindow()}, "outside the reboot window", false},
			{"a blackout date", none, []string{"--blackout", time.Now().UTC().Format("2006-01-02") + "," + time.Now().Format("2006-01-02")}, "outside", false},
		},
		gate.Interval: {
			{"within the min reboot interval", finished("n1"), []string{"--min-reboot-interval", "1h"}, "min reboot interval", false},
			{"a request file the last reboot did not clear", func(t *testing.T, n *testNode) {
				writeFile(t, n.trigger, "")
				before := time.Now().Add(-time.Hour)
				if err := os.Chtimes(n.trigger, before, before); err != nil {
					t.Fatal(err)
				}
				finished("n1")(t, n)
			}, []string{"--min-reboot-interval", "1h"}, "did not clear", true},
		},
		gate.Health: {
			{"unhealthy", func(t *testing.T, n *testNode) { n.agent.SetService("galera", "critical") }, nil, "galera", false},
			{"unhealthy, with stay-green", func(t *testing.T, n *testNode) { n.agent.SetService("galera", "critical") }, []string{"--stay-green", "1m"}, "galera", false},
		},
		gate.Tasks: {{"a tasks directory that does not exist", none, []string{"--tasks-dir", "/nonexistent/rebootmgr"}, "does not exist", false}},
		gate.Lock: {{"lock held", func(t *testing.T, n *testNode) {
			putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Preparing, Since: time.Now()})
		}, nil, "n7", false}},
		gate.Cooldown: {{"within the cooldown", finished("n9"), []string{"--cooldown", "1h"}, "cooldown", false}},
		// An alert that fires in a real Prometheus: see TestAlertsGate.
		gate.Alerts: {{"an alert source that cannot be read", none, []string{"--alerts-url", "http://127.0.0.1:1"}, "the alert source cannot be read", false}},
	}
}

// TestCheckAgreesWithReboot walks the list of gates (gate.List): for each gate that can hold a
// node back, in a state made for it, check, a dry run and a real run of reboot end as the list
// says the gate ends (its exit code), check names the gate as the one that fails, status --json
// shows it as the node's first blocking gate, and nothing reboots. With every gate passing, all
// three say so and the real run reboots. The gates come from the same code; a gate added to the
// list without a state here fails the test.
func TestCheckAgreesWithReboot(t *testing.T) {
	// A trigger only says whether a daemon acts at all; stay green holds a node back only over
	// time, as the pipeline watches health (at one moment, it is the health gate: see above).
	sayOnly := map[string]bool{gate.Trigger: true, gate.StayGreen: true}
	cases := agreeCases()
	t.Run("every gate passes", func(t *testing.T) { agree(t, gate.Gate{}, agreeCase{setup: func(*testing.T, *testNode) {}}) })
	for _, g := range gate.List() {
		cs, ok := cases[g.Name]
		switch {
		case sayOnly[g.Name] && ok:
			t.Errorf("gate %q says only, and has a state that holds a node back", g.Name)
		case sayOnly[g.Name]:
		case !ok:
			t.Errorf("gate %q has no state that makes it hold a node back", g.Name)
		}
		for _, c := range cs {
			t.Run(g.Name+"/"+c.name, func(t *testing.T) { agree(t, g, c) })
		}
	}
}

// agree sets up c on a node and says whether check, reboot (dry run, then a real run) and status
// agree that g holds it back (none: g's Name is "").
func agree(t *testing.T, g gate.Gate, c agreeCase) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	c.setup(t, n)
	code := exitOK
	if g.Name != "" {
		code = exitError
		if g.Ends != nil {
			code = exitOf(g.Ends)
		}
	}
	rebootFlags := c.flags
	if c.asked {
		rebootFlags = append([]string{"--check-triggers"}, c.flags...)
	}
	check := n.run("check", c.flags...)
	dry := n.run("reboot", append([]string{"--dry-run"}, rebootFlags...)...)
	if check.code != code || dry.code != code {
		t.Fatalf("check exits %d, reboot --dry-run %d, want %d\ncheck: %s\nreboot: %s", check.code, dry.code, code, check, dry)
	}
	if g.Name != "" {
		n.expect(check, code, c.mention)
		n.expect(dry, code, c.mention)
		if failed := fmt.Sprintf("%-9s FAIL", g.Name); !strings.Contains(check.stdout, failed) {
			t.Fatalf("check does not say %q:\n%s", failed, check.stdout)
		}
	}
	// status shows a gate blocking only where something asks for a reboot.
	asked := n.get(n.keys().RebootRequired("n1")) != nil
	if !asked {
		n.put(n.keys().RebootRequired("n1"), "")
	}
	row := statusOf(t, n, "n1", c.flags...)
	if !asked {
		n.kv().Delete(n.keys().RebootRequired("n1"), nil)
	}
	switch {
	case g.Name == "" && row.Blocked != nil:
		t.Fatalf("status: blocked by %+v, check and reboot pass", row.Blocked)
	case g.Name != "" && (row.Blocked == nil || row.Blocked.Gate != g.Name || !strings.Contains(row.Blocked.Reason, c.mention)):
		t.Fatalf("status: blocked by %+v, want gate %q, its reason mentioning %q", row.Blocked, g.Name, c.mention)
	}
	real := n.run("reboot", rebootFlags...)
	n.expect(real, code, c.mention)
	if rebooted := n.rebootCount() != 0; rebooted != (g.Name == "") {
		t.Fatalf("rebooted: %v (exit %d)", rebooted, real.code)
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
	// status sees what asks through Consul (the file that asked reboot is the node's own).
	n.put(n.keys().RebootRequired(n.agent.Node), "kernel")
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
