package main

import (
	"strings"
	"testing"
)

// TestCheckSaysHealthOnce: check shows each piece of its health evidence once (a failing
// service's rule and instances were printed twice, once as evidence, once as the problem), and
// a malformed tag once, as the configuration error it is, with what to fix (never as the
// service's rules read as zero, "passing 0/1").
func TestCheckSaysHealthOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(n *testNode)
		code  int
		once  []string
		never []string
	}{
		{"a quorum not met", func(n *testNode) {
			n.agent.RegisterService("galera", []string{"rebootmgr", "min_passing=3"}, "passing")
			n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr", "min_passing=3"}, "passing")
			n.agent.RegisterRemote("n3", "galera", []string{"rebootmgr", "min_passing=3"}, "critical")
		}, exitUnhealthy, []string{"min_passing=3, passing 2/3", `n3: check "service:galera" critical`}, nil},
		{"a malformed tag", func(n *testNode) {
			n.agent.RegisterService("web", []string{"rebootmgr", "min_passing=abc"}, "passing")
		}, exitError, []string{`malformed tag "min_passing=abc"`, "fix the tags of service web on n1"}, []string{"passing 0/1", "min_passing=0"}},
		{"a malformed tag beside a quorum not met", func(n *testNode) {
			n.agent.RegisterService("web", []string{"rebootmgr", "min_passing=abc"}, "passing")
			n.agent.RegisterService("galera", []string{"rebootmgr", "min_passing=3"}, "passing")
			n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr", "min_passing=3"}, "critical")
		}, exitError, []string{`malformed tag "min_passing=abc"`, "min_passing=3, passing 1/2", `n2: check "service:galera" critical`}, []string{"passing 0/1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			tt.setup(n)
			r := n.run("check")
			n.expect(r, tt.code)
			for _, s := range tt.once {
				if got := strings.Count(r.stdout, s); got != 1 {
					t.Errorf("check says %q %d times, want once:\n%s", s, got, r.stdout)
				}
			}
			for _, s := range tt.never {
				if strings.Contains(r.stdout, s) {
					t.Errorf("check says %q:\n%s", s, r.stdout)
				}
			}
		})
	}
}
