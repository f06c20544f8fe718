package consulmodel

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hashicorp/consul/api"
)

// wholeEntries is /v1/health/service/NAME encoded whole, each entry anew.
func wholeEntries(m *Model, service string, passing bool) []byte {
	out := []*serviceEntry{}
	m.instances(service, func(n *cnode, s *cservice) {
		e := &serviceEntry{Node: apiNode(n), Service: agentService(s), Checks: []*checkJSON{}}
		allPassing := true
		for _, chk := range sortedChecks(n) {
			if chk.serviceID == "" || chk.serviceID == s.id {
				e.Checks = append(e.Checks, healthCheck(n, chk))
				allPassing = allPassing && chk.status == api.HealthPassing
			}
		}
		if !passing || allPassing {
			out = append(out, e)
		}
	})
	data, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	return data
}

// TestHealthEntriesKept: the answer made of the entries kept is, after every change of the
// catalog, the one encoded whole.
func TestHealthEntriesKept(t *testing.T) {
	m := New()
	for i := range 4 {
		node := fmt.Sprintf("n%d", i)
		m.Register(node, map[string]string{"g": "1"})
		m.AddService(node, "svc", "svc", []string{"a"}, 80)
		m.SetCheck(node, "service:svc", "svc", api.HealthPassing)
	}
	all := filter(func(fields) bool { return true })
	for _, step := range []struct {
		name   string
		change func()
	}{
		{"as registered", func() {}},
		{"a check fails", func() { m.SetCheck("n1", "service:svc", "svc", api.HealthCritical) }},
		{"a node's check", func() { m.SetCheck("n2", "extra", "", api.HealthWarning) }},
		{"a node fails", func() { m.Fail("n3") }},
		{"a node leaves", func() { m.Leave("n0") }},
		{"it comes back with other meta", func() { m.Register("n0", map[string]string{"g": "2"}) }},
		{"a service again with other tags", func() { m.AddService("n2", "svc", "svc", []string{"b"}, 81) }},
		{"a second service", func() { m.AddService("n2", "svc2", "svc", nil, 82) }},
		{"the check passes again", func() { m.SetCheck("n1", "service:svc", "svc", api.HealthPassing) }},
	} {
		step.change()
		for _, passing := range []bool{false, true} {
			m.mu.Lock()
			got := m.healthEntries(&Call{Query: map[string][]string{}}, "svc", &all, passing)
			want := wholeEntries(m, "svc", passing)
			m.mu.Unlock()
			if string(got.body) != string(want) {
				t.Errorf("%s (passing %v):\n got %s\nwant %s", step.name, passing, got.body, want)
			}
		}
	}
}
