package health

import (
	"fmt"
	"testing"
)

// BenchmarkEvaluate is one node judging its health on a service of n instances, each tagged
// with the rules, every node remembered as a member, two reboots in flight: what a node's health
// gate computes at each look, and a status computes for every node.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			tags := []string{Tag, "max_failing=1"}
			svc := Service{Name: "svc", Tags: tags}
			for i := range n {
				node := fmt.Sprintf("n%05d", i)
				svc.Instances = append(svc.Instances, tagged(inst(node, "passing"), tags...))
				svc.Members = append(svc.Members, node)
			}
			down := map[string]string{"n00001": "rebooting", "n00002": "rebooting"}
			b.ResetTimer()
			for b.Loop() {
				if rep := Evaluate("n00000", []Service{svc}, down); rep.OK() {
					b.Fatal("two reboots in flight under max_failing=1 let the node go")
				}
			}
		})
	}
}
