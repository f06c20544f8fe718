package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestReadsOfWhatDoesNotExist: a read of a group or a node that nothing knows says so, rather
// than showing an empty answer as if it were one: history of a group with no key and no node
// is an error (exit 1, stdout empty, --json too), an empty history of a known group says it
// has none, a limit nobody set says it is the default, a node Consul does not know is named.
func TestReadsOfWhatDoesNotExist(t *testing.T) {
	n := dev(t)
	// compute is known by a node's meta, batch by a key, nosuch by nothing.
	if _, err := n.agent.Client.Catalog().Register(&api.CatalogRegistration{
		Node: "c1", Address: "127.0.0.2", NodeMeta: map[string]string{store.GroupMeta: "compute"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	n.put(n.keys().GroupLimit("batch"), "3")
	now := time.Now().UTC()
	data, err := (history.Log{Version: 1}).Append(history.Entry{Node: "n1", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	n.put(n.keys().GroupHistory(store.DefaultGroup), string(data))

	tests := []struct {
		args   []string
		code   int
		says   string
		stdout string // exactly, when set
	}{
		{args: []string{"history"}, says: "finished"},
		{args: []string{"history", "n1"}, says: "finished"},
		{args: []string{"history", "c1"}, says: "no reboot of c1 recorded in group default"},
		{args: []string{"history", "ghost"}, code: exitError, says: "node ghost is not in consul's catalog and no reboot of it is recorded"},
		{args: []string{"history", "--group", "nosuch"}, code: exitError, says: "no group nosuch: no key under service/rebootmgr/groups/nosuch/ and no node with node meta rebootmgr-group=nosuch"},
		{args: []string{"history", "--group", "nosuch", "--json"}, code: exitError, says: "no group nosuch"},
		{args: []string{"history", "--group", "compute"}, says: "group compute has no history: no reboot recorded yet"},
		{args: []string{"history", "--group", "compute", "--json"}, stdout: "[]\n"},
		{args: []string{"history", "--group", "batch"}, says: "group batch has no history"},
		{args: []string{"limit", "nosuch"}, says: "group nosuch: 1 at a time (the default; no node and no key knows group nosuch yet: a typo?)"},
		{args: []string{"limit", "compute"}, says: "group compute: 1 at a time (the default: no limit set)"},
		{args: []string{"limit", "batch"}, stdout: "group batch: 3 at a time\n"},
		{args: []string{"limit", "default"}, says: "group default: 1 at a time (the default: no limit set)"},
		{args: []string{"check", "--node", "ghost"}, code: exitError, says: "node ghost is not in consul's catalog"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := n.run(tt.args[0], tt.args[1:]...)
			n.expect(r, tt.code, tt.says)
			if tt.code != 0 && r.stdout != "" {
				t.Fatalf("stdout is not empty: %s", r)
			}
			if tt.stdout != "" && r.stdout != tt.stdout {
				t.Fatalf("stdout %q, want %q", r.stdout, tt.stdout)
			}
		})
	}
}

// TestUnknownGroupsAreRefused: a group nothing knows (no node with its node meta, no key of it)
// is a typo until said otherwise. Every command that writes for a group refuses it (stop, limit
// exit 1 with --force to write anyway; reboot and daemon exit 64, as for a bad setting), and so
// do the reads that would answer as if it existed (resume, unlock, check, history). A group known
// by a node's meta or by a key of it is taken.
func TestUnknownGroupsAreRefused(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	// compute is known by a node's meta, batch by a key.
	if _, err := n.agent.Client.Catalog().Register(&api.CatalogRegistration{
		Node: "c1", Address: "127.0.0.2", NodeMeta: map[string]string{store.GroupMeta: "compute"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	n.put(n.keys().GroupLimit("batch"), "3")

	tests := []struct {
		args []string
		code int
		says []string
	}{
		{[]string{"stop", "--group", "comptue", "--reason", "nova upgrade"}, exitError, []string{"no group comptue: no key under service/rebootmgr/groups/comptue/ and no node with node meta rebootmgr-group=comptue", "--force writes anyway"}},
		{[]string{"limit", "comptue", "5"}, exitError, []string{"no group comptue", "--force sets the limit anyway"}},
		{[]string{"resume", "--group", "comptue"}, exitError, []string{"no group comptue", "nothing removed"}},
		{[]string{"unlock", "n1", "--group", "comptue"}, exitError, []string{"no group comptue"}},
		{[]string{"check", "--group", "comptue"}, exitError, []string{"no group comptue"}},
		{[]string{"history", "--group", "comptue"}, exitError, []string{"no group comptue"}},
		{[]string{"reboot", "--group", "comptue"}, exitUsage, []string{"--group comptue: no group comptue", "rebootmgr limit comptue N --force"}},
		{[]string{"reboot", "--group", "comptue", "--dry-run"}, exitUsage, []string{"no group comptue"}},
		{[]string{"daemon", "--group", "comptue"}, exitUsage, []string{"no group comptue"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			n.expect(n.run(tt.args[0], tt.args[1:]...), tt.code, tt.says...)
		})
	}
	if kv := n.agent.KVState(); strings.Contains(kv, "comptue") || strings.Contains(kv, "/lock") {
		t.Fatalf("a refused command wrote:\n%s", kv)
	}
	if n.rebootCount() != 0 {
		t.Fatal("rebooted in a group nothing knows")
	}

	// Known groups are taken; --force writes for one nothing knows, which is known from then on.
	for _, args := range [][]string{
		{"stop", "--group", "compute", "--reason", "nova upgrade"}, {"resume", "--group", "compute"},
		{"limit", "compute", "2"}, {"check", "--group", "batch"}, {"reboot", "--group", "batch", "--dry-run"},
		{"stop", "--group", "comptue", "--force"}, {"resume", "--group", "comptue"}, {"limit", "newgroup", "1", "--force"},
		{"stop", "--group", "newgroup"}, {"resume", "--group", "newgroup"},
	} {
		n.expect(n.run(args[0], args[1:]...), 0)
	}
}
