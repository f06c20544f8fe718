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
