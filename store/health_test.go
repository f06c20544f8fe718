package store

import (
	"context"
	"testing"
)

// TestRuled: whether a node runs a service with a rule over the fleet, as the catalog lists its
// services, and, for a node the catalog no longer knows (its agent left at shutdown), as
// rebootmgr remembers them, each judged by the tags of the service's instances tagged
// rebootmgr.
func TestRuled(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	a.RegisterRemote("ruled", "nova", []string{"rebootmgr", "max_failing=3"}, "passing")
	a.RegisterRemote("every-instance", "gateway", []string{"rebootmgr"}, "passing")
	a.RegisterRemote("local", "dkms", []string{"rebootmgr", "local_only"}, "passing")
	a.RegisterRemote("untagged", "web", []string{"max_failing=3"}, "passing")
	a.RegisterRemote("malformed", "broken", []string{"rebootmgr", "min_passing=x"}, "passing")
	a.RegisterRemote("both", "nova", []string{"rebootmgr", "max_failing=3"}, "passing")
	a.RegisterRemote("both", "dkms", []string{"rebootmgr", "local_only"}, "passing")
	for service, nodes := range map[string][]string{"nova": {"gone-ruled"}, "dkms": {"gone-local"}} {
		if err := s.Remember(ctx, service, nodes); err != nil {
			t.Fatal(err)
		}
	}
	h := Health{Client: a.Client, Members: s}
	for node, want := range map[string]bool{
		"ruled": true, "every-instance": true, "both": true, "gone-ruled": true,
		"local": false, "untagged": false, "malformed": false, "gone-local": false, "gone": false,
		// The agent's own node runs nothing.
		a.Node: false,
	} {
		got, err := h.Ruled(ctx, node)
		if err != nil || got != want {
			t.Errorf("%s: ruled %v (%v), want %v", node, got, err, want)
		}
	}
}
