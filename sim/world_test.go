package sim

import (
	"fmt"
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
