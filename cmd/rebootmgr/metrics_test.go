package main

import (
	"bufio"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestDaemonMetrics scrapes a daemon's metrics while it waits, is held back by health, and
// reboots, against a real agent.
func TestDaemonMetrics(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "critical")
	n.task("pre", "10-evacuate", "true")
	d := n.startDaemon("--metrics-addr", "127.0.0.1:0")
	addr := metricsAddr(t, d.Log)
	fleettest.WaitSeen(t, d.Log.Seen("idle: no reboot required"), "the first run")

	type series map[string]float64
	check := func(when string, want series) map[string]float64 {
		t.Helper()
		got := scrape(t, addr)
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%s: %s = %v, want %v", when, name, got[name], v)
			}
		}
		return got
	}
	idle := check("idle", series{
		`rebootmgr_build_info{group="default",node="n1",version="` + version + `"}`: 1,
		`rebootmgr_reboot_required`:                    0,
		`rebootmgr_phase{phase="idle"}`:                1,
		`rebootmgr_lock_held`:                          0,
		`rebootmgr_blocked{gate="health"}`:             0,
		`rebootmgr_runs_total{result="nothing_to_do"}`: 1,
		`rebootmgr_consul_up`:                          1,
		`rebootmgr_waiting_for_operator`:               0,
	})
	if idle[`rebootmgr_consul_requests_total{code="200"}`] == 0 {
		t.Error("no Consul request counted")
	}

	n.put(n.keys().RebootRequired("n1"), "kernel 6.12")
	fleettest.WaitSeen(t, d.Log.Seen("waiting for health"), "the health gate")
	check("held back by health", series{
		`rebootmgr_reboot_required`:               1,
		`rebootmgr_blocked{gate="health"}`:        1,
		`rebootmgr_runs_total{result="health"}`:   1,
		`rebootmgr_lock_holders{group="default"}`: 0,
	})

	n.agent.SetService("galera", "passing")
	fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot")
	check("rebooting", series{
		`rebootmgr_reboot_required`:                                             1,
		`rebootmgr_blocked{gate="health"}`:                                      0,
		`rebootmgr_phase{phase="idle"}`:                                         0,
		`rebootmgr_phase{phase="rebooting"}`:                                    1,
		`rebootmgr_lock_held`:                                                   1,
		`rebootmgr_lock_holders{group="default"}`:                               1,
		`rebootmgr_runs_total{result="reboot_started"}`:                         1,
		`rebootmgr_task_duration_seconds_count{phase="pre",task="10-evacuate"}`: 1,
		// A normal reboot is no error.
		`rebootmgr_consul_errors_total`: 0,
	})
	d.stop()

	n.boot()
	d = n.startDaemon("--metrics-addr", "127.0.0.1:0")
	addr = metricsAddr(t, d.Log)
	fleettest.WaitSeen(t, d.Log.Seen("idle: reboot finished"), "the post-boot part")
	got := check("finished", series{
		`rebootmgr_reboot_required`:               0,
		`rebootmgr_phase{phase="idle"}`:           1,
		`rebootmgr_lock_held`:                     0,
		`rebootmgr_runs_total{result="finished"}`: 1,
		`rebootmgr_consul_errors_total`:           0,
		`rebootmgr_consul_up`:                     1,
	})
	if got[`rebootmgr_last_reboot_timestamp_seconds`] == 0 {
		t.Error("last reboot time not set after a finished reboot")
	}
}

// TestMetricsAddressInUse: a daemon whose metrics port is taken does not start.
func TestMetricsAddressInUse(t *testing.T) {
	n := dev(t)
	d := n.startDaemon("--metrics-addr", "127.0.0.1:0")
	r := n.run("daemon", "--metrics-addr", metricsAddr(t, d.Log), "--lock-file", n.dir+"/other.lock")
	n.expect(r, 1, "--metrics-addr", "address already in use")
}

var servingMetrics = regexp.MustCompile(`"serving metrics".* addr=(\S+)`)

// metricsAddr is the address a daemon serves its metrics at, from its log.
func metricsAddr(t *testing.T, log *fleettest.Log) string {
	t.Helper()
	fleettest.WaitSeen(t, log.Seen("serving metrics"), "the metrics server")
	m := servingMetrics.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", log)
	}
	return m[1]
}

// scrape reads /metrics into a map from each series, as the text format writes it, to its value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
