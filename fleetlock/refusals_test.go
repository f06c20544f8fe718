package fleetlock

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/internal/alerttest"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// TestFleetLockRefusalsNameNothingInternal: a refusal of every kind tells the client its kind
// and a short text, never the address of Consul, a key, the output of a health check, or Go's
// error text: with a Consul that is down, one that refuses the server's token (403), and one
// that answers. The server's log has the details.
func TestFleetLockRefusalsNameNothingInternal(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	acl := consultest.DevACL(t, "acl1")
	denied, err := api.NewClient(&api.Config{Address: acl.HTTPAddr, Token: "00000000-0000-4000-8000-000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	anonymous, err := api.NewClient(&api.Config{Address: acl.HTTPAddr, Token: "anonymous"})
	if err != nil {
		t.Fatal(err)
	}
	downAddr := closedAddr(t)
	down, err := api.NewClient(&api.Config{Address: downAddr})
	if err != nil {
		t.Fatal(err)
	}
	base := serveLocks(t, &Locks{Client: c, Keys: keys, MinRebootInterval: time.Hour}, nil)
	withTokens := serve(t, c, Tokens{"compute": "s3cret"})
	tight := serveLocks(t, &Locks{Client: c, Keys: keys, MaxQueue: 1}, nil)
	prom := alerttest.Prometheus(t, alerttest.Rule{Alert: "DiskFull", Expr: "vector(1)", Labels: map[string]string{"severity": "critical"}})
	alerting := serveLocks(t, &Locks{Client: c, Keys: keys, Alerts: &gate.AlertSource{Source: alerts.Source{URL: prom}}}, nil)
	noAlerts := serveLocks(t, &Locks{Client: c, Keys: keys, Alerts: &gate.AlertSource{Source: alerts.Source{URL: "http://" + closedAddr(t)}}}, nil)
	for _, g := range []string{"full", "py", "odd", "compute", "stopped", "sick", "malformed", "soon"} {
		put(t, c, keys.GroupLimit(g), "1")
	}
	put(t, c, keys.GroupLimit("odd"), "many")
	post(t, base, "pre-reboot", zincatiBody("holder", "full"), nil).is(t, 200, "")
	put(t, c, keys.LegacyGroupMarker("py"), "pynode")
	put(t, c, keys.GroupStop("stopped"), "kernel rollout paused")
	post(t, base, "pre-reboot", zincatiBody("soon-1", "soon"), nil).is(t, 200, "")
	post(t, base, "steady-state", zincatiBody("soon-1", "soon"), nil).is(t, 200, "")
	// A check whose output names an address of the fleet, and a rule tag that cannot be read.
	if _, err := c.Catalog().Register(&api.CatalogRegistration{Node: "daemon-1", Address: "10.9.8.7",
		Service: &api.AgentService{ID: "rebootmgr", Service: "rebootmgr"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ node, tag, status string }{{"sick-1", "min_passing=1", api.HealthCritical}, {"bad-1", "min_passing=x", api.HealthPassing}} {
		if _, err := c.Catalog().Register(&api.CatalogRegistration{
			Node: r.node, Address: "10.9.8.7",
			Service: &api.AgentService{ID: "web", Service: "web", Tags: []string{"rebootmgr", r.tag}},
			Checks:  api.HealthChecks{{Node: r.node, CheckID: "web-http", Name: "web", ServiceID: "web", Status: r.status, Output: `HTTP GET http://10.9.8.7:8080/health: 503 Service Unavailable`}},
		}, nil); err != nil {
			t.Fatal(err)
		}
	}

	seen := map[string]bool{KindMethodNotAllowed: true}
	for _, tt := range []struct {
		name string
		base string
		path string
		body string
		auth *string
		kind string
	}{
		{"no header", base, "pre-reboot", "", nil, KindMissingHeader},
		{"not JSON", base, "pre-reboot", "id=h1", nil, KindBadRequest},
		{"an id that is a number", base, "pre-reboot", `{"client_params": {"id": 5}}`, nil, KindBadRequest},
		{"no token", withTokens, "pre-reboot", zincatiBody("h1", "compute"), nil, KindUnauthorized},
		{"wrong token", withTokens, "pre-reboot", zincatiBody("h1", "compute"), ptr("Bearer guess"), KindForbidden},
		{"no endpoint", base, "unlock", zincatiBody("h1", "default"), nil, KindNotFound},
		{"the id of a node rebootmgr's daemon reboots", base, "pre-reboot", zincatiBody("daemon-1", "default"), nil, KindIDInUse},
		{"a group nobody made", base, "pre-reboot", zincatiBody("h1", "nobody-made-it"), nil, KindUnknownGroup},
		{"stopped", base, "pre-reboot", zincatiBody("h1", "stopped"), nil, KindStopped},
		{"an id too long", base, "pre-reboot", zincatiBody(strings.Repeat("a", MaxHostID+1), "default"), nil, KindBadRequest},
		{"lock full", base, "pre-reboot", zincatiBody("h1", "full"), nil, KindLockHeld},
		{"lock full, and its queue", tight, "pre-reboot", zincatiBody("h2", "full"), nil, KindQueueFull},
		{"the Python rebootmgr holds the lock", base, "pre-reboot", zincatiBody("h-py", "py"), nil, KindLockHeld},
		{"a failing check", base, "pre-reboot", zincatiBody("sick-1", "sick"), nil, KindUnhealthy},
		{"too soon", base, "pre-reboot", zincatiBody("soon-1", "soon"), nil, KindTooSoon},
		{"an alert fires", alerting, "pre-reboot", zincatiBody("h-alerts", "default"), nil, KindAlertsFiring},
		{"the alert source cannot be read", noAlerts, "pre-reboot", zincatiBody("h-alerts", "default"), nil, KindAlertsUnavailable},
		{"Consul down", serve(t, down, nil), "pre-reboot", zincatiBody("h1", "default"), nil, KindConsulUnavailable},
		{"Consul refuses the server's token", serve(t, denied, nil), "pre-reboot", zincatiBody("h1", "default"), nil, KindError},
		{"Consul denies the anonymous token", serve(t, anonymous, nil), "pre-reboot", zincatiBody("h1", "default"), nil, KindError},
		{"Consul refuses the server's token, steady-state", serve(t, denied, nil), "steady-state", zincatiBody("h1", "default"), nil, KindError},
		{"an unreadable limit", base, "pre-reboot", zincatiBody("h1", "odd"), nil, KindError},
		{"a rule tag that cannot be read", base, "pre-reboot", zincatiBody("bad-1", "malformed"), nil, KindError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]*string{}
			if tt.auth != nil {
				header["Authorization"] = tt.auth
			}
			if tt.kind == KindMissingHeader {
				header["fleet-lock-protocol"] = nil
			}
			a := post(t, tt.base, tt.path, tt.body, header)
			a.is(t, Status(tt.kind), tt.kind)
			saysNothingInternal(t, a, agent.HTTPAddr, acl.HTTPAddr, downAddr)
		})
		seen[tt.kind] = true
	}
	for _, kind := range Kinds() {
		if !seen[kind] {
			t.Errorf("no refusal of kind %s was looked at", kind)
		}
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(base + "v1/pre-reboot")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != Status(KindMethodNotAllowed) {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
	})
}

// saysNothingInternal fails the test when a's text names an address, a key, a check's output
// or Go's error text.
func saysNothingInternal(t *testing.T, a answer, addrs ...string) {
	t.Helper()
	internal := append([]string{keys.Prefix + "/", "127.0.0.1", "10.9.8.7", "http://", "/v1/txn", "/v1/kv", "Unexpected response code",
		"Permission denied", "ACL", "dial tcp", "connection refused", "json:", "strconv", "invalid syntax"}, addrs...)
	for _, s := range internal {
		if strings.Contains(a.raw, s) {
			t.Errorf("the answer names %q: %s", s, a)
		}
	}
	if !slices.Contains(Kinds(), a.refusal.Kind) {
		t.Errorf("kind %q is none of the fixed set %v", a.refusal.Kind, Kinds())
	}
}
