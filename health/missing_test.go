package health

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestMissingMembers: each member with no instance in the catalog is one failing instance more,
// after the instances and in the members' order; a member with an instance adds none.
func TestMissingMembers(t *testing.T) {
	two := []Instance{inst("n1", "passing"), inst("n2", "passing")}
	tests := []struct {
		name    string
		members []string
		want    []string // the nodes of the instances judged, in order
	}{
		{"no members", nil, []string{"n1", "n2"}},
		{"every member present", []string{"n2", "n1"}, []string{"n1", "n2"}},
		{"one member gone", []string{"n1", "n3", "n2"}, []string{"n1", "n2", "n3"}},
		{"members gone, in their order", []string{"n5", "n1", "n4"}, []string{"n1", "n2", "n5", "n4"}},
		{"a member named twice counts twice, as before", []string{"n3", "n3"}, []string{"n1", "n2", "n3", "n3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withMissing(Service{Name: "svc", Instances: two, Members: tt.members})
			var nodes []string
			for k, i := range got {
				nodes = append(nodes, i.Node)
				if k >= len(two) && (len(i.Checks) != 1 || i.Checks[0].CheckID != missingCheck || i.Checks[0].Status != "critical") {
					t.Fatalf("the instance added for %s is %+v, want one failing %s check", i.Node, i, missingCheck)
				}
			}
			if !slices.Equal(nodes, tt.want) {
				t.Fatalf("instances judged on %v, want %v", nodes, tt.want)
			}
			if len(two) != 2 || two[0].Node != "n1" || two[1].Node != "n2" {
				t.Fatalf("the service's instances changed: %v", two)
			}
		})
	}
}

// BenchmarkEvaluateLargeService judges one service whose every instance is a remembered member,
// as a node of a group sharing one service does at every look: its cost grows with the
// service, not with its square.
func BenchmarkEvaluateLargeService(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			svc := Service{Name: "svc", Tags: []string{"max_failing=1"}}
			for i := range n {
				node := fmt.Sprintf("n%05d", i)
				svc.Instances = append(svc.Instances, inst(node, "passing"))
				svc.Members = append(svc.Members, node)
			}
			down := map[string]string{"n00001": "holds the lock", "n00002": "holds the lock"}
			for b.Loop() {
				rep := Evaluate("n00000", []Service{svc}, down)
				if rep.OK() || !strings.Contains(rep.Reason(), "failing 2/") {
					b.Fatalf("unexpected verdict: %s", rep.Reason())
				}
			}
		})
	}
}
