package alerts_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/internal/alerttest"
)

// names are the String of each alert.
func names(as []alerts.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// TestPrometheus reads a real Prometheus's alerts: the firing ones the filter chooses, by name or
// by a label, never a pending one, each with the nodes its node labels name.
func TestPrometheus(t *testing.T) {
	base := alerttest.Prometheus(t,
		alerttest.Rule{Alert: "NodeDown", Expr: "vector(1)", Labels: map[string]string{"instance": "db-1.example.com:9100", "severity": "critical"}},
		alerttest.Rule{Alert: "DiskFull", Expr: "vector(1)", Labels: map[string]string{"nodename": "DB-2", "severity": "warning"}},
		alerttest.Rule{Alert: "Pending", Expr: "vector(1)", For: time.Hour},
	)
	for _, tc := range []struct {
		name, url, filter string
		want              []string
	}{
		{"every firing alert, from the base URL", base, "", []string{`DiskFull{nodename="DB-2",severity="warning"}`, `NodeDown{instance="db-1.example.com:9100",severity="critical"}`}},
		{"the API's URL", base + "/api/v1/alerts", "", []string{`DiskFull{nodename="DB-2",severity="warning"}`, `NodeDown{instance="db-1.example.com:9100",severity="critical"}`}},
		{"by name, matched whole", base, "Node.*", []string{`NodeDown{instance="db-1.example.com:9100",severity="critical"}`}},
		{"a name matched in part is no match", base, "Node", nil},
		{"by label", base, "severity=warning", []string{`DiskFull{nodename="DB-2",severity="warning"}`}},
		{"a pending alert does not fire", base, "Pending", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filter, err := alerts.ParseFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			got, err := alerts.Source{URL: tc.url, Filter: filter}.Firing(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(got), tc.want) {
				t.Fatalf("firing %q, want %q", names(got), tc.want)
			}
		})
	}
	got, err := alerts.Source{URL: base, Filter: nil}.Firing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Names("db-2") || !got[1].Names("db-1") || got[1].Names("db-2") || got[1].Since.IsZero() {
		t.Fatalf("nodes of the alerts: %+v", got)
	}
}

// TestAlertmanager reads a real Alertmanager's alerts: the active ones, never one silenced.
func TestAlertmanager(t *testing.T) {
	base := alerttest.Alertmanager(t)
	alerttest.Fire(t, base, map[string]string{"alertname": "NodeDown", "node": "web-1"})
	alerttest.Fire(t, base, map[string]string{"alertname": "Noisy", "instance": "10.0.0.7:9100"})
	src := alerts.Source{URL: base + "/api/v2/alerts"}
	read := func() []string {
		got, err := src.Firing(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return names(got)
	}
	want := []string{`NodeDown{node="web-1"}`, `Noisy{instance="10.0.0.7:9100"}`}
	alerttest.WaitFor(t, func() bool { return slices.Equal(read(), want) })
	alerttest.Silence(t, base, "Noisy")
	alerttest.WaitFor(t, func() bool { return slices.Equal(read(), want[:1]) })
	got, _ := src.Firing(context.Background())
	if !got[0].Names("web-1.example.com") {
		t.Fatalf("nodes: %+v", got[0])
	}
}

// TestUnreadable: a source that cannot be read, or answers what is not alerts, or too much, is
// an error, never no alert.
func TestUnreadable(t *testing.T) {
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":{"alerts":[` + strings.Repeat(" ", alerts.MaxBytes) + `]}}`))
	}))
	defer huge.Close()
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer wrong.Close()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	defer html.Close()
	closed := huge.Listener.Addr().String()
	for _, tc := range []struct{ name, url, want string }{
		{"too big", huge.URL, "over"},
		{"an error status", wrong.URL, "503"},
		{"not alerts", html.URL, "not Prometheus's alerts"},
		{"not an http URL", "ftp://" + closed, "want http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alerts.Source{URL: tc.url}.Firing(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestHost: a node label's value is compared as a node name.
func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"db-1": "db-1", "DB-1.example.com:9100": "db-1", "http://db-1:9100/metrics": "db-1",
		"10.0.0.7:9100": "10.0.0.7", "[::1]:9100": "::1",
	} {
		if got := alerts.Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
}
