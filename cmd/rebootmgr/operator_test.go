package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

func TestStopResume(t *testing.T) {
	n := dev(t)
	environ := map[string]string{"SUDO_USER": "alice"}
	r := n.runWith(t.Context(), environ, &fleettest.Log{}, "stop", "--reason", "galera upgrade")
	n.expect(r, 0, "stopped: galera upgrade")
	stop := n.get(n.keys().Stop())
	if stop == nil || !strings.Contains(string(stop.Value), "galera upgrade") || !strings.Contains(string(stop.Value), "by alice on ") {
		t.Fatalf("stop value does not say why, who and where: %v", stop)
	}
	n.expect(n.run("reboot"), exitStopped, "galera upgrade", "by alice")
	// A second stop never overwrites the first one's reason.
	n.expect(n.run("stop", "--reason", "other"), exitError, "already stopped", "galera upgrade")
	if got := n.get(n.keys().Stop()); string(got.Value) != string(stop.Value) {
		t.Fatalf("stop reason overwritten: %s", got.Value)
	}
	n.expect(n.run("resume"), 0, "resumed: removed the stop flag", "galera upgrade")
	n.expect(n.run("resume"), 0, "not stopped")
	n.expect(n.run("reboot"), 0, "reboot started")
}

func TestTriggerCancel(t *testing.T) {
	n := dev(t)
	n.expect(n.run("trigger", "compute-17"), exitError, "not in consul's catalog")
	if n.get(n.keys().RebootRequired("compute-17")) != nil {
		t.Fatal("a request was written for an unknown node")
	}
	n.agent.RegisterRemote("compute-17", "nova", nil, "passing")
	n.expect(n.run("trigger", "compute-17", "--reason", "kernel 6.1"), 0, "asked compute-17 to reboot")
	if n.get(n.keys().RebootRequired("compute-17")) == nil {
		t.Fatal("no request written")
	}
	n.expect(n.run("trigger", "compute-17"), 0, "already asked", "kernel 6.1")
	n.expect(n.run("cancel", "compute-17"), 0, "cancelled", "kernel 6.1")
	n.expect(n.run("cancel", "compute-17"), 0, "no reboot request")
	// Without an argument: this node.
	n.expect(n.run("trigger"), 0, "asked n1")
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
}

func TestDisableEnable(t *testing.T) {
	n := dev(t)
	n.expect(n.run("disable", "n1", "--reason", "disk swap"), 0, "disabled n1")
	n.expect(n.run("reboot"), exitDisabled, "disk swap")
	n.expect(n.run("disable", "n1", "--reason", "other"), exitError, "already disabled", "disk swap")
	n.expect(n.run("check"), exitDisabled, "disk swap")
	n.expect(n.run("enable"), 0, "enabled n1", "disk swap")
	n.expect(n.run("enable"), 0, "was not disabled")
	n.expect(n.run("reboot"), 0, "reboot started")
}

// TestUnlock: without --force, a holder within its phase's expected time is refused when it is
// rebooting or finishing (alive in Consul or not: a rebooting node's agent is down), and when it
// is preparing and alive. Refused, the record is as it was.
func TestUnlock(t *testing.T) {
	n := dev(t)
	n.agent.RegisterRemote("down", "nova", nil, "passing") // in the catalog, no agent: not alive
	now := time.Now()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name  string
		h     lock.Holder
		force bool
		code  int
		says  []string
	}{
		{"preparing, alive, just started", lock.Holder{Node: "n1", Phase: lock.Preparing, Since: now, Updated: now}, false, exitError, []string{"refusing", "alive"}},
		{"preparing, alive, forced", lock.Holder{Node: "n1", Phase: lock.Preparing, Since: now, Updated: now}, true, 0, []string{"released the reboot lock of n1"}},
		{"preparing, alive, past its time", lock.Holder{Node: "n1", Phase: lock.Preparing, Since: ago(time.Hour), Updated: ago(31 * time.Minute)}, false, 0, []string{"released"}},
		{"preparing, down", lock.Holder{Node: "down", Phase: lock.Preparing, Since: now, Updated: now}, false, 0, []string{"released the reboot lock of down"}},
		{"preparing, not in consul", lock.Holder{Node: "gone", Phase: lock.Preparing, Since: now, Updated: now}, false, 0, []string{"released"}},
		{"rebooting, down", lock.Holder{Node: "down", Phase: lock.Rebooting, Since: ago(time.Minute), Updated: now, BootID: "b1"}, false, exitError, []string{"refusing to unlock down", "rebooting", "--force"}},
		{"rebooting, not in consul", lock.Holder{Node: "gone", Phase: lock.Rebooting, Since: now, Updated: now, BootID: "b1"}, false, exitError, []string{"refusing", "rebooting"}},
		{"rebooting, alive", lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: now, Updated: now}, false, exitError, []string{"refusing", "rebooting"}},
		{"rebooting, down, only since given", lock.Holder{Node: "down", Phase: lock.Rebooting, Since: ago(time.Minute)}, false, exitError, []string{"refusing", "rebooting"}},
		{"rebooting, down, forced", lock.Holder{Node: "down", Phase: lock.Rebooting, Since: now, Updated: now, BootID: "b1"}, true, 0, []string{"released the reboot lock of down", "rebooting", "b1"}},
		{"rebooting, down, past its time", lock.Holder{Node: "down", Phase: lock.Rebooting, Since: ago(time.Hour), Updated: ago(21 * time.Minute)}, false, 0, []string{"released"}},
		{"finishing, alive", lock.Holder{Node: "n1", Phase: lock.Finishing, Since: ago(10 * time.Minute), Updated: now}, false, exitError, []string{"refusing", "finishing"}},
		{"finishing, down", lock.Holder{Node: "down", Phase: lock.Finishing, Since: ago(10 * time.Minute), Updated: now}, false, exitError, []string{"refusing", "finishing"}},
		{"finishing, down, past its time", lock.Holder{Node: "down", Phase: lock.Finishing, Since: ago(time.Hour), Updated: ago(31 * time.Minute)}, false, 0, []string{"released"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, _ := lock.Record{Version: lock.Version}.Acquire(tt.h, 1)
			data, _ := rec.Encode()
			n.put(n.keys().Lock(), string(data))
			before := n.get(n.keys().Lock())
			args := []string{tt.h.Node}
			if tt.force {
				args = append(args, "--force")
			}
			n.expect(n.run("unlock", args...), tt.code, tt.says...)
			after := n.get(n.keys().Lock())
			if tt.code == 0 && after != nil {
				t.Fatalf("lock not released: %s", after.Value)
			}
			l := historyOf(t, n, "default")
			last := history.Entry{}
			if len(l.Entries) > 0 {
				last = l.Entries[len(l.Entries)-1]
			}
			recorded := last.Node == tt.h.Node && last.Outcome == history.Unlocked && strings.Contains(last.Detail, "phase "+string(tt.h.Phase))
			if (tt.code == 0) != recorded {
				t.Fatalf("exit %d, last history entry %+v: every unlock is recorded, nothing else", tt.code, last)
			}
			n.kv().Delete(n.keys().GroupHistory("default"), nil)
			if tt.code != 0 && (after == nil || after.ModifyIndex != before.ModifyIndex) {
				t.Fatalf("a refused unlock changed the lock: %v", after)
			}
			n.kv().Delete(n.keys().Lock(), nil)
		})
	}
	n.expect(n.run("unlock", "gone"), exitError, "does not hold")
	n.expect(n.run("unlock"), exitUsage, "NODE")
}

// TestUnlockConflict: unlock writes against a read in which the entry it judged is as judged; a
// change of that entry while it judges is a conflict (nothing written, the change stays), a
// change of anything else is read again and kept.
func TestUnlockConflict(t *testing.T) {
	n := dev(t)
	now := time.Now()
	gone := lock.Holder{Node: "gone", Phase: lock.Preparing, Since: now, Updated: now}
	moved := gone
	moved.Phase, moved.Updated = lock.Rebooting, now.Add(time.Second)
	var g connFlags
	g.prefix, g.consulAddr, g.logLevel, g.logFormat = store.DefaultPrefix, n.agent.HTTPAddr, "info", "text"
	o, err := g.operator(env{lookup: func(string) (string, bool) { return "", false }}, &fleettest.Log{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		meanwhile lock.Record // written while the entry is judged
		conflict  bool
		after     []string // the holders left
	}{
		{"another node takes a place meanwhile: kept, and gone's given back", lock.Record{Version: lock.Version, Holders: []lock.Holder{gone, {Node: "n1", Phase: lock.Preparing, Since: now, Updated: now}}}, false, []string{"n1"}},
		{"the entry judged changes meanwhile: nothing written", lock.Record{Version: lock.Version, Holders: []lock.Holder{moved}}, true, []string{"gone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := lock.Record{Version: lock.Version, Holders: []lock.Holder{gone}}
			data, _ := rec.Encode()
			n.put(n.keys().Lock(), string(data))
			meanwhile, _ := tt.meanwhile.Encode()
			_, err := o.store.Unlock(t.Context(), "gone", func(h lock.Holder) error {
				if err := mayUnlock(t.Context(), o.store, h, time.Now()); err != nil {
					return err // gone is not in Consul: it may go
				}
				n.put(n.keys().Lock(), string(meanwhile))
				return nil
			})
			if errors.Is(err, store.ErrConflict) != tt.conflict {
				t.Fatalf("err = %v, want a conflict: %v", err, tt.conflict)
			}
			var left []string
			for _, h := range n.lockRecord().Holders {
				left = append(left, h.Node)
			}
			if !slices.Equal(left, tt.after) {
				t.Fatalf("holders %v, want %v", left, tt.after)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr", "min_passing=2"}, "passing")
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr", "min_passing=2"}, "critical")
	n.expect(n.run("trigger"), 0)
	n.expect(n.run("disable", "n3", "--reason", "broken fan"), exitError, "not in consul's catalog")
	n.expect(n.run("disable", "n3", "--reason", "broken fan", "--force"), 0)
	writeFile(t, n.trigger, "")
	r := n.run("status", "--json", "--reboot-required-file", n.trigger)
	n.expect(r, 0)
	var st fleet.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, r.stdout)
	}
	rows := map[string]fleet.Node{}
	for _, row := range st.Nodes {
		rows[row.Node] = row
	}
	if got := rows["n1"]; strings.Join(got.RebootRequired, ",") != "key,file" || got.Blocked == nil || got.Blocked.Gate != gate.Health {
		t.Fatalf("n1: %+v %+v", got, got.Blocked)
	}
	if got := rows["n3"]; got.Disabled == nil || !strings.Contains(*got.Disabled, "broken fan") {
		t.Fatalf("n3: %+v", got)
	}
	if _, ok := rows["n2"]; !ok {
		t.Fatal("a node known only to Consul is missing")
	}
	r = n.run("status")
	n.expect(r, 0, "NODE", "blocked by health", "min_passing=2")
	if strings.Contains(r.stdout, "\x1b[") {
		t.Fatal("colours when not on a terminal")
	}
}

func TestCheck(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr", "min_passing=3"}, "passing")
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr", "min_passing=3"}, "passing")
	n.agent.RegisterRemote("n3", "galera", []string{"rebootmgr", "min_passing=3"}, "critical")
	r := n.run("check")
	n.expect(r, exitUnhealthy, "galera: min_passing=3, passing 2/3", "n3")
	for _, gate := range []string{"stop", "lock", "disabled", "health", "tasks"} {
		if !strings.Contains(r.stdout, gate) {
			t.Fatalf("check does not show the %s gate:\n%s", gate, r.stdout)
		}
	}
	indexBefore := kvIndex(t, n)
	n.agent.RegisterRemote("n3", "galera", []string{"rebootmgr", "min_passing=3"}, "passing")
	n.expect(n.run("check"), 0, "may reboot now")
	n.expect(n.run("check", "--node", "n2"), 0, "not visible from this node")
	n.expect(n.run("check", "--node", "nowhere"), exitError, "not in consul's catalog")
	if kvIndex(t, n) != indexBefore || n.rebootCount() != 0 {
		t.Fatal("check changed something")
	}
}

// TestCheckTasks: check lists the tasks as reboot would: a directory among them is skipped (it
// made check panic), a missing tasks directory fails the tasks gate.
func TestCheckTasks(t *testing.T) {
	n := dev(t)
	n.task("pre", "10-drain", "true")
	if err := os.Mkdir(filepath.Join(n.tasksDir, "pre_boot_tasks", "20-subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := n.run("check")
	n.expect(r, 0, "may reboot now")
	if !strings.Contains(r.stdout, "1 pre-boot and 0 post-boot tasks") {
		t.Fatalf("check does not count the one pre-boot task:\n%s", r.stdout)
	}
	missing := filepath.Join(n.dir, "no-such-dir")
	r = n.run("check", "--tasks-dir", missing)
	n.expect(r, exitError, "tasks directory "+missing+" does not exist")
	if !strings.Contains(r.stdout, "tasks     FAIL") {
		t.Fatalf("the tasks gate does not fail:\n%s", r.stdout)
	}
}

// TestOperatorDenied: an operator without write permission is told which key and which
// permission.
func TestOperatorDenied(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	token := aclToken(t, agent, `
agent_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }
key_prefix "service/rebootmgr/" { policy = "read" }
`)
	t.Setenv("CONSUL_HTTP_TOKEN", token)
	n.expect(n.run("stop"), exitError, "service/rebootmgr/stop", "Permission denied", "key:write")
	n.expect(n.run("status"), 0)
}

// TestCompletion: bash completes each command's own flags, and nodes and groups from Consul
// (the script asks rebootmgr itself); the zsh script is one an autoloaded file can be.
func TestCompletion(t *testing.T) {
	n := dev(t)
	n.agent.RegisterRemote("compute-1", "nova", nil, "passing")
	n.put(n.keys().GroupLimit("computes"), "2")
	bin := fleettest.Build(t, false)
	var script strings.Builder
	if code := run(t.Context(), []string{"completion", "bash"}, testEnv(nil), &script, io.Discard); code != 0 {
		t.Fatalf("bash completion: exit %d", code)
	}
	file := filepath.Join(t.TempDir(), "rebootmgr.bash")
	writeFile(t, file, script.String())
	for _, tt := range []struct {
		line    string // the words typed, the last one being completed
		want    []string
		notWant []string
	}{
		{"rebootmgr st", []string{"status", "stop"}, []string{"trigger"}},
		{"rebootmgr status --j", []string{"--json"}, nil},
		{"rebootmgr unlock --", []string{"--cancel-request", "--end-maintenance", "--force"}, []string{"--json"}},
		{"rebootmgr daemon --met", []string{"--metrics-addr"}, nil},
		{"rebootmgr trigger ", []string{"n1", "compute-1"}, nil},
		{"rebootmgr check --node comp", []string{"compute-1"}, nil},
		{"rebootmgr history --group ", []string{"computes", "default"}, nil},
		{"rebootmgr limit ", []string{"computes", "default"}, []string{"n1"}},
		{"rebootmgr limit comp", []string{"computes"}, nil},
		{"rebootmgr limit computes ", nil, []string{"computes", "default"}},
		{"rebootmgr history ", []string{"n1", "compute-1"}, []string{"computes"}},
		{"rebootmgr history --group computes comp", []string{"compute-1"}, nil},
		{"rebootmgr stop --all", []string{"--all-datacenters"}, nil},
		{"rebootmgr status --datacenter ", []string{"dc1"}, nil},
		{"rebootmgr completion ", []string{"bash", "zsh"}, nil},
	} {
		t.Run(tt.line, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "bash", "-c", `source "$1"; read -ra COMP_WORDS <<< "$2"; [[ "$2" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _rebootmgr; printf '%s\n' "${COMPREPLY[@]}"`, "bash", file, tt.line)
			cmd.Env = fleettest.Environ("PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "CONSUL_HTTP_ADDR="+n.agent.HTTPAddr)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			got := strings.Fields(string(out))
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("completing %q offers %v, not %q", tt.line, got, w)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(got, w) {
					t.Errorf("completing %q offers %q", tt.line, w)
				}
			}
		})
	}
	var zsh strings.Builder
	if code := run(t.Context(), []string{"completion", "zsh"}, testEnv(nil), &zsh, io.Discard); code != 0 {
		t.Fatalf("zsh completion: exit %d", code)
	}
	if z := zsh.String(); !strings.HasPrefix(z, "#compdef rebootmgr\n") || !strings.Contains(z, `"$funcstack[1]" = "_rebootmgr"`) || !strings.Contains(z, "--cancel-request") {
		t.Fatalf("zsh completion is no autoloadable function file:\n%s", z)
	}
}

// TestHelp: every command has help with examples and exits 0.
func TestHelp(t *testing.T) {
	for _, c := range commands() {
		if c.name == "version" || c.name == "completion" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(t.Context(), []string{c.name, "--help"}, env{lookup: func(string) (string, bool) { return "", false }}, &out, &errOut)
			if code != 0 || !strings.Contains(out.String(), "Examples:") || !strings.Contains(out.String(), "Usage: rebootmgr") {
				t.Fatalf("exit %d:\n%s%s", code, out.String(), errOut.String())
			}
		})
	}
}

// TestLongReasonIsRefused: a reason over the bound is a usage error that writes nothing,
// never a reason cut without a word; one at the bound is stored whole, with who wrote it, in the
// request, the lock and the history.
func TestLongReasonIsRefused(t *testing.T) {
	n := dev(t)
	long := strings.Repeat("ü", 300<<10) // 600 kB
	tests := []struct {
		name string
		args []string
	}{
		{"stop", []string{"stop", "--reason", long}},
		{"stop a group", []string{"stop", "--group", "compute", "--reason", long}},
		{"trigger", []string{"trigger", "n1", "--reason", long}},
		{"disable", []string{"disable", "n1", "--reason", long}},
		{"disable, one byte over", []string{"disable", "n1", "--reason", strings.Repeat("x", clip.MaxReason+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.expect(n.run(tt.args[0], tt.args[1:]...), exitUsage, "--reason is", "nothing written")
			keys, _, err := n.kv().Keys(store.DefaultPrefix+"/", "", nil)
			if err != nil || len(keys) != 0 {
				t.Fatalf("written: %v %v", keys, err)
			}
		})
	}
	atBound := strings.Repeat("€", clip.MaxReason/len("€"))
	whole := func(what, text string) {
		t.Helper()
		if !strings.Contains(text, atBound+" (by alice on ") || strings.Contains(text, clip.Marker) {
			t.Fatalf("%s: a reason at the bound was not kept whole, with who wrote it: %d bytes", what, len(text))
		}
	}
	environ := map[string]string{"SUDO_USER": "alice"}
	n.expect(n.runWith(t.Context(), environ, &fleettest.Log{}, "trigger", "n1", "--reason", atBound), 0, "asked n1 to reboot")
	whole("request", string(n.get(n.keys().RebootRequired("n1")).Value))
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
	whole("lock", n.holder("n1").TriggeredBy)
	n.boot()
	n.expect(n.run("reboot", "--check-triggers"), 0)
	pair := n.get(n.keys().GroupHistory(""))
	if pair == nil {
		t.Fatal("no history")
	}
	l, err := history.Decode(pair.Value)
	if err != nil || len(l.Entries) != 1 {
		t.Fatalf("history: %d entries, %v", len(l.Entries), err)
	}
	whole("history", l.Entries[0].TriggeredBy)
}

// TestUnlockSaysWhatIsLeftBehind: a reboot that did not happen leaves the node in maintenance
// and its request set (it would start again at once); unlock says so, and clears both when
// asked (maintenance only on the node itself, whose agent it belongs to).
func TestUnlockSaysWhatIsLeftBehind(t *testing.T) {
	for _, tt := range []struct {
		name     string
		flags    []string
		mentions []string
		cleared  bool
	}{
		{"told", nil, []string{"left behind: a reboot request", "--cancel-request", "left behind: n1 is in maintenance mode"}, false},
		{"cleared", []string{"--cancel-request", "--end-maintenance"}, []string{"withdrew the reboot request of n1", "ended the maintenance mode of n1"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			putHolder(t, n, lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: time.Now(), BootID: "boot-1"})
			n.put(n.keys().RebootRequired("n1"), "kernel")
			if err := n.agent.Client.Agent().EnableNodeMaintenance("rebootmgr: rebooting n1"); err != nil {
				t.Fatal(err)
			}
			waitNodeCheck(t, n, "_node_maintenance")
			r := n.run("unlock", append([]string{"n1", "--force"}, tt.flags...)...)
			n.expect(r, 0, "released the reboot lock of n1")
			for _, m := range tt.mentions {
				if !strings.Contains(r.stdout, m) {
					t.Fatalf("unlock does not say %q:\n%s", m, r.stdout)
				}
			}
			if got := n.get(n.keys().RebootRequired("n1")) == nil; got != tt.cleared {
				t.Fatalf("request withdrawn: %v, want %v", got, tt.cleared)
			}
			if n.inMaintenance() == tt.cleared {
				t.Fatalf("maintenance on: %v after unlock %v", n.inMaintenance(), tt.flags)
			}
		})
	}
}

// waitNodeCheck waits, with blocking queries, until the catalog shows check on n's node.
func waitNodeCheck(t *testing.T, n *testNode, check string) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprintf("the catalog never showed %s on %s", check, n.agent.Node) }, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		checks, meta, err := n.agent.Client.Health().Node(n.agent.Node, q)
		return slices.ContainsFunc(checks, func(c *api.HealthCheck) bool { return c.CheckID == check }), meta, err
	})
}

// historyOf is group's history as stored.
func historyOf(t *testing.T, n *testNode, group string) history.Log {
	t.Helper()
	return stored(t, n, n.keys().GroupHistory(group), history.Decode)
}
