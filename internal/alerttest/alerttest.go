// Package alerttest starts a real Prometheus, whose rules make alerts fire from static
// expressions, and a real Alertmanager, on loopback with their storage in the test's temporary
// directory, for the tests of the alerts gate. A test that needs one and cannot find its
// binary fails: scripts/test installs Debian's prometheus and prometheus-alertmanager.
package alerttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Rule is an alerting rule: its alert fires from expr (vector(1): at once), with labels; For
// keeps it pending that long first.
type Rule struct {
	Alert  string
	Expr   string
	For    time.Duration
	Labels map[string]string
}

// binary is the program named by the environment variable env, else found on the PATH as
// name; the test fails without it.
func binary(t testing.TB, env, name, pkg string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("no %s to test against: run the tests with scripts/test, which installs Debian's %s, or set %s", name, pkg, env)
	}
	return p
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// start runs bin with args until the test ends, logging to a file kept in dir; it returns when
// url answers 200.
func start(t testing.TB, dir, bin, url string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		_ = logf.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s exited: %v\n%s", bin, err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s did not answer at %s within a minute\n%s", bin, url, out)
		}
	}
}

// Prometheus starts a Prometheus evaluating rules every 100ms, and returns its base URL once
// every rule has been evaluated (each alert is firing, or pending for one with For).
func Prometheus(t testing.TB, rules ...Rule) string {
	t.Helper()
	bin := binary(t, "PROMETHEUS_BIN", "prometheus", "prometheus")
	dir := t.TempDir()
	var r strings.Builder
	r.WriteString("groups:\n- name: rebootmgr-test\n  interval: 100ms\n  rules:\n")
	for _, rule := range rules {
		fmt.Fprintf(&r, "  - alert: %s\n    expr: %s\n", rule.Alert, rule.Expr)
		if rule.For > 0 {
			fmt.Fprintf(&r, "    for: %s\n", rule.For)
		}
		if len(rule.Labels) > 0 {
			r.WriteString("    labels:\n")
			for k, v := range rule.Labels {
				fmt.Fprintf(&r, "      %s: %q\n", k, v)
			}
		}
	}
	write(t, filepath.Join(dir, "rules.yml"), r.String())
	write(t, filepath.Join(dir, "prometheus.yml"), "global:\n  evaluation_interval: 100ms\nrule_files: [rules.yml]\n")
	addr := freeAddr(t)
	base := "http://" + addr
	start(t, dir, bin, base+"/-/ready",
		"--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	waitFor(t, func() bool { return countAlerts(t, base+"/api/v1/alerts") >= len(rules) })
	return base
}

// countAlerts is how many alerts Prometheus's API lists (firing or pending).
func countAlerts(t testing.TB, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var doc struct {
		Data struct {
			Alerts []json.RawMessage `json:"alerts"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&doc) != nil {
		return 0
	}
	return len(doc.Data.Alerts)
}

// Alertmanager starts an Alertmanager that sends nowhere, and returns its base URL.
func Alertmanager(t testing.TB) string {
	t.Helper()
	bin := binary(t, "ALERTMANAGER_BIN", "prometheus-alertmanager", "prometheus-alertmanager")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "alertmanager.yml"), "route:\n  receiver: none\nreceivers:\n- name: none\n")
	addr := freeAddr(t)
	base := "http://" + addr
	start(t, dir, bin, base+"/-/ready",
		"--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	return base
}

// Fire posts an alert with labels to the Alertmanager at base, firing for an hour.
func Fire(t testing.TB, base string, labels map[string]string) {
	t.Helper()
	body, _ := json.Marshal([]map[string]any{{"labels": labels, "startsAt": time.Now().UTC(), "endsAt": time.Now().Add(time.Hour).UTC()}})
	post(t, base+"/api/v2/alerts", body)
}

// Silence silences the alerts named alertname at the Alertmanager at base, for an hour.
func Silence(t testing.TB, base, alertname string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"matchers": []map[string]any{{"name": "alertname", "value": alertname, "isRegex": false, "isEqual": true}},
		"startsAt": time.Now().UTC(), "endsAt": time.Now().Add(time.Hour).UTC(), "createdBy": "test", "comment": "test",
	})
	post(t, base+"/api/v2/silences", body)
}

func post(t testing.TB, url string, body []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until ok, for a minute at most.
func waitFor(t testing.TB, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("not within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitFor waits until ok, for a minute at most (Alertmanager shows an alert posted, or a
// silence, only once it has taken it in).
func WaitFor(t testing.TB, ok func() bool) { waitFor(t, ok) }

// Resolve posts the alert with labels to the Alertmanager at base as resolved: it ends now.
func Resolve(t testing.TB, base string, labels map[string]string) {
	t.Helper()
	now := time.Now().UTC()
	body, _ := json.Marshal([]map[string]any{{"labels": labels, "startsAt": now.Add(-time.Minute), "endsAt": now}})
	post(t, base+"/api/v2/alerts", body)
}
