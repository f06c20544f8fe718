package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

func policy(t *testing.T, name, node string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "acl", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("NODE", node, "GROUP", "default").Replace(string(data))
}

// oldDaemonPolicy is rebootmgr 0.1.0's daemon policy for node: the shipped one without the keys
// added since (the turn keys, the claims of room, the queue's asks).
func oldDaemonPolicy(t *testing.T, node string) string {
	t.Helper()
	return policyWithout(t, node, "/turn/", "/claims", "/asks/")
}

// policyWithout is the shipped daemon policy for node without the rules of keys that contain
// any of parts.
func policyWithout(t *testing.T, node string, parts ...string) string {
	t.Helper()
	var old []string
	for _, line := range strings.Split(policy(t, "rebootmgr-daemon.hcl", node), "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return strings.Contains(line, p) }) {
			old = append(old, line)
		}
	}
	return strings.Join(old, "\n")
}

// TestDaemonPolicy: the shipped daemon policy is enough for a whole reboot, and no more than
// this node's keys and the lock may be written with it.
func TestDaemonPolicy(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr"}, "passing")
	n.put(n.keys().RebootRequired("n1"), "")
	t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, policy(t, "rebootmgr-daemon.hcl", "n1")))

	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
	if !n.inMaintenance() {
		t.Fatal("maintenance not set with the daemon policy")
	}
	for _, key := range []string{n.keys().LegacyMarker(), n.keys().LegacyGroupMarker("default")} {
		if p := n.get(key); p == nil || string(p.Value) != "[rebootmgr] n1" {
			t.Fatalf("the Python rebootmgr's marker %s not written with the daemon policy: %v", key, p)
		}
	}
	n.boot()
	n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
	if n.get(n.keys().RebootRequired("n1")) != nil || n.get(n.keys().Lock()) != nil || n.get(n.keys().LegacyMarker()) != nil {
		t.Fatal("not cleaned up with the daemon policy")
	}
	if h := n.get(n.keys().GroupHistory("default")); h == nil || !strings.Contains(string(h.Value), `"outcome":"finished"`) {
		t.Fatalf("history not written with the daemon policy: %v", h)
	}
	// A holder past its deadline: the daemon policy may stop its own group (and the run ends
	// at the stop it set).
	putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Rebooting, Since: time.Now().Add(-time.Hour), Deadline: time.Now().Add(-time.Minute)})
	n.expect(n.run("reboot", "--check-triggers"), exitStopped, "n7 did not finish")
	if n.get(n.keys().GroupStop("default")) == nil {
		t.Fatal("the daemon policy could not stop its group for an overdue holder")
	}
	n.kv().Delete(n.keys().GroupStop("default"), nil)
	// A full lock: the node joins its group's queue.
	putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Preparing, Since: time.Now()})
	n.put(n.keys().RebootRequired("n1"), "")
	n.expect(n.run("reboot", "--check-triggers"), exitLockHeld, "n7")
	if q := queueOf(t, n); len(q.Entries) != 1 || q.Entries[0].Node != "n1" || n.get(n.keys().GroupAsk("default", "n1")) == nil {
		t.Fatalf("the daemon policy could not join the queue with its own ask: %+v", q)
	}
	n.kv().Delete(n.keys().RebootRequired("n1"), nil)
	n.kv().Delete(n.keys().Lock(), nil)
	d := n.startDaemon()
	fleettest.WaitSeen(t, d.Log.Seen("idle: no reboot required"), "the daemon idle")
	// It registered itself, and says it runs.
	waitDaemonCheck(t, n, "the daemon's check passing under its policy", func(c *api.HealthCheck) bool { return c.Status == api.HealthPassing })
	if strings.Contains(d.Log.String(), "could not register") {
		t.Fatalf("the daemon could not register itself with its policy:\n%s", d.Log)
	}

	// Not the fleet's stop flag, not another node's keys.
	n.expect(n.run("stop"), exitError, "Permission denied")
	n.expect(n.run("disable", "n2"), exitError, "Permission denied")
}

// TestTurnKeysUnderPolicies: under the shipped daemon policy, a node giving its place back tells
// the next node of the queue in the same transaction, and folds the next one's ask into the
// queue's record. Under a policy from before the asks, it writes the record alone, the whole
// queue in it (the next one's ask stays, hidden by the record), and still tells it. Under a
// policy from before the turn keys too (rebootmgr 0.1.0's), the place is still given back, the
// node says that it could not tell the next one, and that one is told nothing (it sees the place
// at its tick). A node joining the queue under an older policy joins its record, in its order.
func TestTurnKeysUnderPolicies(t *testing.T) {
	for _, tt := range []struct {
		name        string
		policy      func(*testing.T) string
		woken, asks bool
	}{
		{"the shipped policy", func(t *testing.T) string { return policy(t, "rebootmgr-daemon.hcl", "n1") }, true, true},
		{"a policy from before the asks", func(t *testing.T) string { return policyWithout(t, "n1", "/asks/") }, true, false},
		{"a policy from before the turn keys", func(t *testing.T) string { return oldDaemonPolicy(t, "n1") }, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			agent := consultest.DevACL(t, "n1")
			n := newTestNode(t, agent)
			n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
			n.put(n.keys().RebootRequired("n1"), "")
			t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, tt.policy(t)))
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
			// n2 joins the queue behind the full lock, with its own ask.
			ask, _ := lock.EncodeAsk(lock.QueueEntry{Node: "n2", Since: time.Now()})
			n.put(n.keys().GroupAsk("default", "n2"), string(ask))
			n.boot()
			r := n.run("reboot", "--check-triggers")
			n.expect(r, 0, "reboot finished")
			if n.get(n.keys().Lock()) != nil {
				t.Fatalf("the place was not given back: %+v", n.lockRecord())
			}
			if q := queueOf(t, n); len(q.Entries) != 1 || q.Entries[0].Node != "n2" || q.Freed.IsZero() {
				t.Fatalf("the queue once the place was given back: %+v", q)
			}
			if folded := n.get(n.keys().GroupAsk("default", "n2")) == nil; folded != tt.asks {
				t.Fatalf("n2's ask folded into the record: %v, want %v", folded, tt.asks)
			}
			turn := n.get(n.keys().GroupTurn("default", "n2"))
			if woken := turn != nil; woken != tt.woken {
				t.Fatalf("n2 told of the place: %v, want %v", woken, tt.woken)
			}
			if said := strings.Contains(r.stderr, "could not tell the nodes next in the group's queue"); said == tt.woken {
				t.Fatalf("the node said it could not tell the next: %v, want %v:\n%s", said, !tt.woken, r.stderr)
			}
			// n1 asked again behind a full lock joins the queue, behind n2.
			putHolder(t, n, lock.Holder{Node: "n7", Phase: lock.Preparing, Since: time.Now()})
			n.put(n.keys().RebootRequired("n1"), "")
			n.expect(n.run("reboot", "--check-triggers"), exitLockHeld, "n7")
			if q := queueOf(t, n); len(q.Entries) != 2 || q.Entries[1].Node != "n1" {
				t.Fatalf("n1 joining the queue: %+v", q.Entries)
			}
			if asked := n.get(n.keys().GroupAsk("default", "n1")) != nil; asked != tt.asks {
				t.Fatalf("n1 joined with an ask of its own: %v, want %v", asked, tt.asks)
			}
		})
	}
}

// TestOperatorPolicy: the shipped operator policy runs every operator command.
func TestOperatorPolicy(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr"}, "passing")
	t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, policy(t, "rebootmgr-operator.hcl", "")))
	for _, args := range [][]string{
		{"stop", "--reason", "x"}, {"resume"},
		{"trigger", "n2"}, {"cancel", "n2"},
		{"disable", "n2", "--reason", "y"}, {"enable", "n2"},
		{"status"}, {"status", "--json"}, {"check", "--node", "n2"},
		{"history"}, {"history", "n2"}, {"limit", "compute"},
	} {
		n.expect(n.run(args[0], args[1:]...), 0)
	}
	operatorRecovers(t, n)
}

// operatorRecovers runs, under the token in the environment, the recoveries the runbook and
// status print: a reboot that did not happen on another node (n2, in maintenance), a node gone
// for good, a group stopped, a node a failed task disabled.
func operatorRecovers(t *testing.T, n *testNode) {
	t.Helper()
	maint := consultest.NodeCheck{CheckID: "_node_maintenance", Status: api.HealthCritical, Notes: "rebootmgr: rebooting n2"}
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr"}, "passing", maint)
	putHolder(t, n, lock.Holder{Node: "n2", Phase: lock.Rebooting, Since: time.Now(), BootID: "boot-1"})
	n.put(n.keys().RebootRequired("n2"), "kernel")
	// From another node, all of it is done but the maintenance, which only n2's agent can end:
	// said, with how.
	r := n.run("unlock", "n2", "--force", "--cancel-request", "--end-maintenance")
	n.expect(r, exitError, "released the reboot lock of n2", "withdrew the reboot request of n2", "done but one thing", "on n2, run consul maint -disable")
	if n.get(n.keys().Lock()) != nil || n.get(n.keys().RebootRequired("n2")) != nil {
		t.Fatalf("unlock from another node did not do what it could: lock %v, request %v", n.get(n.keys().Lock()), n.get(n.keys().RebootRequired("n2")))
	}
	// Meanwhile status never says ok of a node in maintenance.
	if row := statusOf(t, n, "n2"); row.Maintenance == nil {
		t.Fatalf("status does not show n2 in maintenance: %+v", row)
	}
	n.expect(n.run("status"), 0, "in maintenance: rebootmgr: rebooting n2")

	// A node gone for good: unlocked, then forgotten once it left the catalog.
	putHolder(t, n, lock.Holder{Node: "n3", Phase: lock.Rebooting, Since: time.Now(), BootID: "boot-1"})
	n.put(n.keys().Member("galera", "n3"), "")
	n.expect(n.run("unlock", "n3", "--force"), 0, "released the reboot lock of n3")
	n.expect(n.run("forget", "n3"), 0, "forgot n3")
	// A group stopped, a node a failed task disabled.
	n.expect(n.run("stop", "--group", "default", "--reason", "breaker"), 0)
	n.expect(n.run("resume", "--group", "default"), 0)
	n.put(n.keys().Disabled("n2"), "pre-boot task 10-drain failed (rebootmgr, 2026-01-01T00:00:00Z)")
	n.expect(n.run("enable", "n2"), 0)
}

// TestStatusNeverAnAllClearItCannotKnow: with ACLs on and a token that may not read what status
// shows (here none at all, as an operator's shell without CONSUL_HTTP_TOKEN has), status does
// not say "stop flag: not set" and "lock free": it fails, naming what is missing.
func TestStatusNeverAnAllClearItCannotKnow(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr"}, "passing")
	n.put(n.keys().Stop(), "freeze")
	for _, tt := range []struct {
		name, rules, mention string
	}{
		{"no token", "", "Permission denied"},
		{"nodes hidden", `key_prefix "service/rebootmgr/" { policy = "read" }
agent_prefix "" { policy = "read" }`, "node_prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rules != "" {
				t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, tt.rules))
			}
			r := n.run("status")
			n.expect(r, exitError, tt.mention)
			if strings.Contains(r.stdout, "not set") {
				t.Fatalf("status printed an all-clear: %s", r.stdout)
			}
		})
	}
}

// TestGroupsHiddenByACLs: a group the token cannot see (its nodes hidden by ACLs, no key of it)
// is never reported unknown: the refusal says that this token cannot see it, and nothing is
// written.
func TestGroupsHiddenByACLs(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	if _, err := agent.Client.Catalog().Register(&api.CatalogRegistration{
		Node: "c1", Address: "127.0.0.2", NodeMeta: map[string]string{store.GroupMeta: "compute"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, `key_prefix "service/rebootmgr/" { policy = "write" }
agent_prefix "" { policy = "read" }
node "n1" { policy = "read" }`))
	for _, args := range [][]string{
		{"stop", "--group", "compute"}, {"resume", "--group", "compute"}, {"limit", "compute", "3"},
		{"history", "--group", "compute"}, {"reboot", "--group", "compute", "--dry-run"},
	} {
		r := n.run(args[0], args[1:]...)
		n.expect(r, exitError, "this token cannot see whether group compute exists", "results hidden by Consul's ACLs")
		if strings.Contains(r.stderr, "no group") {
			t.Fatalf("rebootmgr %v said the group is unknown: %s", args, r)
		}
	}
	if kv := n.agent.KVState(); strings.Contains(kv, "compute") {
		t.Fatalf("written for a group the token cannot see:\n%s", kv)
	}
}

// TestRefusalsNameTheToken: every ACL refusal names the token the command sent and where it came
// from. A node's operator who types rebootmgr stop picks up the daemon's token from the
// configuration file: the fleet's stop is refused, naming the key, the token file and the file
// that named it, and the two ways on; the node's own group stop is granted to that token. A token
// in the environment wins over the file's; no token at all is said too.
func TestRefusalsNameTheToken(t *testing.T) {
	agent := consultest.DevACL(t, "n1")
	n := newTestNode(t, agent)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr"}, "passing")
	daemonToken := aclToken(t, agent, policy(t, "rebootmgr-daemon.hcl", "n1"))
	operatorToken := aclToken(t, agent, policy(t, "rebootmgr-operator.hcl", ""))
	tokenFile := filepath.Join(n.dir, "consul-token")
	writeFile(t, tokenFile, daemonToken+"\n")
	config := filepath.Join(n.dir, "rebootmgr.default")
	writeFile(t, config, "CONSUL_HTTP_TOKEN_FILE="+tokenFile+"\n")
	onNode := map[string]string{"REBOOTMGR_CONFIG": config}
	fromFile := "token: CONSUL_HTTP_TOKEN_FILE=" + tokenFile + " in " + config
	t.Setenv("CONSUL_HTTP_TOKEN", "")

	run := func(environ map[string]string, args ...string) result {
		return n.runWith(t.Context(), environ, &fleettest.Log{}, args[0], args[1:]...)
	}
	n.expect(run(onNode, "stop", "--reason", "galera upgrade"), exitError,
		`"service/rebootmgr/stop"`, "rebootmgr-operator.hcl", "rebootmgr stop --group default", fromFile)
	n.expect(run(onNode, "stop", "--group", "default", "--reason", "galera upgrade"), 0, "stopped")
	n.expect(run(onNode, "resume", "--group", "default"), 0, "resumed")
	n.expect(run(onNode, "disable", "n2", "--reason", "disk swap"), exitError, "service/rebootmgr/n2/disabled", fromFile)
	n.expect(run(onNode, "limit", "default", "2"), exitError, "service/rebootmgr/groups/default/limit", fromFile)

	// The environment's token wins over the file's.
	t.Setenv("CONSUL_HTTP_TOKEN", operatorToken)
	n.expect(run(onNode, "stop", "--reason", "galera upgrade"), 0, "stopped")
	n.expect(run(onNode, "resume"), 0, "resumed")
	t.Setenv("CONSUL_HTTP_TOKEN", aclToken(t, agent, `key_prefix "service/rebootmgr/" { policy = "read" }
agent_prefix "" { policy = "read" }`))
	n.expect(run(onNode, "status"), exitError, "results hidden by Consul's ACLs", "token: CONSUL_HTTP_TOKEN from the environment")
	n.expect(run(onNode, "trigger", "n2"), exitError, "this token cannot see whether node n2 exists", "token: CONSUL_HTTP_TOKEN from the environment")
	n.expect(run(onNode, "trigger", "n2", "--force"), exitError, "service/rebootmgr/n2/reboot_required", "token: CONSUL_HTTP_TOKEN from the environment")

	// No token at all.
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	// Results hidden by ACLs are never a typo.
	r := run(nil, "trigger", "n2")
	n.expect(r, exitError, "this token cannot see whether node n2 exists", "token: none")
	if strings.Contains(r.stderr, "typo") {
		t.Fatalf("a node hidden by ACLs reported as a typo: %s", r)
	}
	n.expect(run(nil, "stop"), exitError, "service/rebootmgr/stop", "token: none (CONSUL_HTTP_TOKEN and CONSUL_HTTP_TOKEN_FILE unset): anonymous")
	if n.get(n.keys().Stop()) != nil || n.get(n.keys().Disabled("n2")) != nil {
		t.Fatal("a refused command wrote")
	}
}
