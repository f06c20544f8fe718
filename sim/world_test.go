package sim

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// TestSharedRuleCountsEveryInstance: every instance of the service shared across groups carries
// the rule the checker holds the fleet to, min_passing all but two of its instances, whichever
// node was built first.
func TestSharedRuleCountsEveryInstance(t *testing.T) {
	w, err := New(Config{Nodes: 12, SharedEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	entries, _, err := w.model.Client("n0001", nil).Health().Service("shared", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("min_passing=%d", w.sharedMin())
	if len(entries) != 12 || want != "min_passing=10" {
		t.Fatalf("%d instances, the checker's rule %s", len(entries), want)
	}
	for _, e := range entries {
		if !slices.Contains(e.Service.Tags, want) {
			t.Errorf("%s's instance is tagged %v, not %s", e.Node.Node, e.Service.Tags, want)
		}
	}
}

// TestLimitOf: the groups take the forms of --limit in turn.
func TestLimitOf(t *testing.T) {
	tests := []struct {
		limit, group, want string
	}{
		{"2", "g1", "2"},
		{"2", "g7", "2"},
		{"5, auto,10%", "g1", "5"},
		{"5, auto,10%", "g2", "auto"},
		{"5, auto,10%", "g3", "10%"},
		{"5, auto,10%", "g4", "5"},
		{"3 per-zone=1,1", "g1", "3 per-zone=1"},
	}
	for _, tt := range tests {
		if got := (Config{Limit: tt.limit}).LimitOf(tt.group); got != tt.want {
			t.Errorf("Config{Limit: %q}.LimitOf(%q) = %q, want %q", tt.limit, tt.group, got, tt.want)
		}
	}
}

// TestServiceSize: a group's own service is split into services of ServiceSize of its nodes, in
// the order they join the group.
func TestServiceSize(t *testing.T) {
	w, err := New(Config{Nodes: 12, Groups: 2, ServiceSize: 4, SharedEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	got := map[string][]string{}
	for _, n := range w.nodes {
		got[n.services[0]] = append(got[n.services[0]], n.name)
	}
	want := map[string][]string{
		"svc-g1-1": {"n0001", "n0003", "n0005", "n0007"}, "svc-g1-2": {"n0009", "n0011"},
		"svc-g2-1": {"n0002", "n0004", "n0006", "n0008"}, "svc-g2-2": {"n0010", "n0012"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
}
