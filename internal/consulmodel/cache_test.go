package consulmodel

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestCachedHealthIsFresh: a read of a service's health answers, after every kind of change,
// what it answers encoded anew; between two changes of the catalog (a KV write is none) it
// answers from the cache.
func TestCachedHealthIsFresh(t *testing.T) {
	m := New()
	for i := range 3 {
		n := fmt.Sprintf("n%d", i+1)
		m.Register(n, map[string]string{"rebootmgr_group": "g1"})
		m.AddService(n, "svc", "svc", []string{"rebootmgr", "max_failing=1"}, 80)
		m.SetCheck(n, "service:svc", "svc", "passing")
	}
	agent := m.Client("n1", nil).Agent()
	steps := []struct {
		name   string
		change func()
	}{
		{"nothing", func() {}},
		{"a KV write", func() { m.Put("k", "v") }},
		{"a service check fails", func() { m.SetCheck("n2", "service:svc", "svc", "critical") }},
		{"a node check fails", func() { m.Fail("n3") }},
		{"maintenance", func() { _ = agent.EnableNodeMaintenance("reboot") }},
		{"maintenance ends", func() { _ = agent.DisableNodeMaintenance() }},
		{"a new instance", func() { m.AddService("n4", "svc", "svc", []string{"rebootmgr"}, 80) }},
		{"a clean leave", func() { m.Leave("n2") }},
		{"back with other meta", func() { m.Register("n2", map[string]string{"rebootmgr_group": "g2"}) }},
	}
	queries := []string{"", "?passing=1", "?tag=max_failing%3D1", "?index=1&wait=1s"}
	for _, s := range steps {
		s.change()
		for _, q := range queries {
			got := m.healthBody(t, q)
			again := m.healthBody(t, q)
			m.answers.cache = nil
			fresh := m.healthBody(t, q)
			if !bytes.Equal(got, fresh) || !bytes.Equal(again, fresh) {
				t.Fatalf("after %s, %q answers\n%s\nthen\n%s\nwhere encoded anew\n%s", s.name, q, got, again, fresh)
			}
		}
	}
}

func (m *Model) healthBody(t *testing.T, query string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://consul-model/v1/health/service/svc"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&transport{m: m, node: "n1"}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s %v", query, res.StatusCode, body, err)
	}
	return body
}
