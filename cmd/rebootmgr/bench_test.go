package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// The daemon's latencies on loopback, with a real agent and the daemon as its own process
// (built without the race detector). Each reports p50 and p99 over b.N rounds:
//
//	go test -run '^$' -bench Daemon -benchtime 50x ./cmd/rebootmgr
//
// Targets: every latency under 1 s at p99.

// latencies collects round times and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	pct := func(p float64) float64 {
		i := int(float64(len(l)-1) * p)
		return float64(l[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// measure runs act and returns how long until the log shows text once more than before.
func measure(b *testing.B, log *fleettest.Log, text string, act func()) time.Duration {
	b.Helper()
	ch := log.SeenN(text, log.Count(text)+1)
	start := time.Now()
	act()
	fleettest.WaitSeen(b, ch, text)
	return time.Since(start)
}

func benchNode(b *testing.B) (*testNode, string) {
	b.Helper()
	return dev(b), fleettest.Build(b, false)
}

// BenchmarkDaemonTriggerKey: from `consul kv put .../reboot_required` to the pipeline's start.
func BenchmarkDaemonTriggerKey(b *testing.B) {
	n, bin := benchNode(b)
	d := n.startDaemonProc(bin, "--dry-run")
	key := n.keys().RebootRequired("n1")
	var l latencies
	b.ResetTimer()
	for range b.N {
		l = append(l, measure(b, d.Log, `msg="reboot required"`, func() { n.put(key, "") }))
		b.StopTimer()
		measure(b, d.Log, `msg="no reboot required"`, func() { n.kv().Delete(key, nil) })
		b.StartTimer()
	}
	l.report(b)
}

// BenchmarkDaemonTriggerFile: from creating the reboot-required file to the pipeline's start.
func BenchmarkDaemonTriggerFile(b *testing.B) {
	n, bin := benchNode(b)
	d := n.startDaemonProc(bin, "--dry-run")
	var l latencies
	b.ResetTimer()
	for range b.N {
		l = append(l, measure(b, d.Log, `msg="reboot required"`, func() { writeFile(b, n.trigger, "") }))
		b.StopTimer()
		measure(b, d.Log, `msg="no reboot required"`, func() { os.Remove(n.trigger) })
		b.StartTimer()
	}
	l.report(b)
}

// BenchmarkDaemonStopKey: from `consul kv put .../stop` to the running task ended and the
// daemon halted.
func BenchmarkDaemonStopKey(b *testing.B) {
	n, bin := benchNode(b)
	n.task("pre", "10-drain", "echo task running; exec sleep 1000")
	d := n.startDaemonProc(bin, "--dry-run")
	measure(b, d.Log, "task running", func() { n.put(n.keys().RebootRequired("n1"), "") })
	var l latencies
	b.ResetTimer()
	for range b.N {
		l = append(l, measure(b, d.Log, "halted", func() { n.put(n.keys().Stop(), "") }))
		b.StopTimer()
		measure(b, d.Log, "task running", func() { n.kv().Delete(n.keys().Stop(), nil) })
		b.StartTimer()
	}
	l.report(b)
}

// BenchmarkDaemonHandOff: from the lock's release by the node before to this node taking it.
func BenchmarkDaemonHandOff(b *testing.B) {
	n, bin := benchNode(b)
	// The pre-boot task withdraws the request, so the node gives the lock back and the next
	// round can start.
	n.task("pre", "10-withdraw", consultest.Binary(b)+" kv delete -http-addr="+n.agent.HTTPAddr+" "+n.keys().RebootRequired("n1"))
	d := n.startDaemonProc(bin)
	other, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "n9", Phase: lock.Finishing, Since: time.Now()}, 1)
	held, _ := other.Encode()
	var l latencies
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		n.put(n.keys().Lock(), string(held))
		measure(b, d.Log, "waiting:", func() { n.put(n.keys().RebootRequired("n1"), "") })
		b.StartTimer()
		// The release is timed from its write: the read it is judged on comes before.
		s := &store.Consul{Client: n.agent.Client, Keys: n.keys()}
		v, err := s.View(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		l = append(l, measure(b, d.Log, `msg="reboot lock taken"`, func() {
			if ok, err := s.Commit(context.Background(), v, place.ReleaseIn(v, "n9", time.Now())); !ok || err != nil {
				b.Fatalf("release: %v, %v", ok, err)
			}
		}))
		b.StopTimer()
		fleettest.WaitSeen(b, d.Log.SeenN(`msg="idle: reboot request withdrawn`, d.Log.Count(`msg="reboot lock taken"`)), "the lock given back")
		b.StartTimer()
	}
	if n.rebootCount() != 0 {
		b.Fatal("rebooted")
	}
	l.report(b)
}

// BenchmarkDaemonIdle: the Consul requests an idle daemon makes and its resident memory. The
// daemon talks to Consul through a proxy that counts; the window after the first evaluation
// is REBOOTMGR_BENCH_IDLE (default 60s; 11m covers the 10-minute blocking queries and two
// ticks, and gives the steady rate).
func BenchmarkDaemonIdle(b *testing.B) {
	window := 60 * time.Second
	if v := os.Getenv("REBOOTMGR_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	n, bin := benchNode(b)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	proxy, requests := countingProxy(b, n.agent.HTTPAddr)
	for range b.N {
		requests.Store(0)
		d := n.startDaemonProc(bin, "--consul-addr", proxy)
		fleettest.WaitSeen(b, d.Log.Seen(`msg="idle: no reboot required"`), "the first evaluation")
		startup := requests.Load()
		time.Sleep(window)
		idle := requests.Load() - startup
		b.ReportMetric(float64(startup), "startup-requests")
		b.ReportMetric(float64(idle)/window.Minutes(), "idle-requests/min")
		b.ReportMetric(rssMB(b, d.Pid()), "rss-MB")
		b.ReportMetric(0, "ns/op")
		d.Kill9()
	}
}

func rssMB(b *testing.B, pid int) float64 {
	b.Helper()
	return procStatusMB(b, pid, "VmRSS:")
}

// procStatusMB reads a memory field of /proc/PID/status, in MB.
func procStatusMB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatalf("no %s for %d", field, pid)
	return 0
}

// BenchmarkStatus500: rebootmgr status over 500 nodes registered in the catalog, each with a
// tagged service (5 services, 100 instances each), a few holding requests and disabled marks.
// It reports the requests made to Consul per run: bounded by the number of tagged services,
// not by the number of nodes. Target: under 1 s.
func BenchmarkStatus500(b *testing.B) {
	n := dev(b)
	for i := range 500 {
		node := fmt.Sprintf("node-%03d", i)
		svc := fmt.Sprintf("svc-%d", i%5)
		n.agent.RegisterRemoteQuiet(node, svc, []string{"rebootmgr", "min_passing=50"}, "passing")
		if i%50 == 0 {
			n.put(n.keys().RebootRequired(node), "")
		}
		if i%100 == 0 {
			n.put(n.keys().Disabled(node), "bench")
		}
	}
	addr, requests := countingProxy(b, n.agent.HTTPAddr)
	noEnv := env{lookup: func(string) (string, bool) { return "", false }}
	b.ResetTimer()
	requests.Store(0)
	for range b.N {
		var out, errOut strings.Builder
		if code := run(b.Context(), []string{"status", "--json", "--consul-addr", addr}, noEnv, &out, &errOut); code != 0 {
			b.Fatalf("status: exit %d: %s", code, errOut.String())
		}
		if !strings.Contains(out.String(), "node-499") {
			b.Fatal("status misses nodes")
		}
	}
	b.ReportMetric(float64(requests.Load())/float64(b.N), "consul-requests/op")
}

// countingProxy forwards to a Consul agent and counts the requests; it returns its address.
func countingProxy(b *testing.B, agent string) (string, *atomic.Int64) {
	b.Helper()
	addr, m := meteredProxy(b, agent)
	return addr, &m.requests
}

// meter counts what one client sent a Consul agent through a proxy, and what it got back:
// requests, and bytes as they crossed the wire between the client and the proxy (request line,
// headers and body each way).
type meter struct {
	requests, sent, received atomic.Int64
}

// spent is a meter read at one moment.
type spent struct{ requests, sent, received int64 }

func (m *meter) read() spent {
	return spent{m.requests.Load(), m.sent.Load(), m.received.Load()}
}

func (u spent) minus(v spent) spent {
	return spent{u.requests - v.requests, u.sent - v.sent, u.received - v.received}
}

func (u spent) plus(v spent) spent {
	return spent{u.requests + v.requests, u.sent + v.sent, u.received + v.received}
}

// bytes is what crossed the wire both ways.
func (u spent) bytes() int64 { return u.sent + u.received }

// meteredProxy forwards to a Consul agent and counts the requests and the bytes of its client;
// it returns its address.
func meteredProxy(b *testing.B, agent string) (string, *meter) {
	b.Helper()
	m := &meter{}
	target, _ := url.Parse("http://" + agent)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // blocking queries cut off when a daemon stops
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	proxy.Listener = meteredListener{Listener: proxy.Listener, m: m}
	proxy.Start()
	b.Cleanup(proxy.Close)
	return strings.TrimPrefix(proxy.URL, "http://"), m
}

// meteredListener counts the bytes of every connection it accepts.
type meteredListener struct {
	net.Listener
	m *meter
}

func (l meteredListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return meteredConn{Conn: c, m: l.m}, nil
}

type meteredConn struct {
	net.Conn
	m *meter
}

func (c meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.sent.Add(int64(n))
	return n, err
}

func (c meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.received.Add(int64(n))
	return n, err
}

// BenchmarkIdleFleet: REBOOTMGR_BENCH_DAEMONS (default 200) idle daemons, each its own process
// (in dry-run mode, so that one agent serves them all), talk to Consul through a counting
// proxy for REBOOTMGR_BENCH_IDLE (default 60s; 11m for the steady rate). It reports the
// requests per minute the Consul agent serves, and each daemon's CPU seconds and memory.
func BenchmarkIdleFleet(b *testing.B) {
	count := envInt(b, "REBOOTMGR_BENCH_DAEMONS", 200)
	window := envDuration(b, "REBOOTMGR_BENCH_IDLE", 60*time.Second)
	// In a fleet every daemon talks to its own agent; here they all come from one address, past
	// Consul's default limit of 200 connections per client.
	n := newTestNode(b, consultest.Dev(b, "n1", "-hcl", "limits { http_max_conns_per_client = 5000 }"))
	bin := fleettest.Build(b, false)
	proxy, requests := countingProxy(b, n.agent.HTTPAddr)
	for range b.N {
		var procs []*fleettest.Daemon
		for i := range count {
			node := fmt.Sprintf("idle-%03d", i)
			procs = append(procs, n.startDaemonProc(bin, "--dry-run", "--node", node, "--consul-addr", proxy,
				"--lock-file", filepath.Join(n.dir, node+".lock"), "--reboot-required-file", filepath.Join(n.dir, node+".required")))
		}
		startup := requests.Load()
		time.Sleep(window)
		idle := requests.Load() - startup
		var cpu, rss float64
		for _, d := range procs {
			cpu += cpuSeconds(b, d.Pid())
			rss += rssMB(b, d.Pid())
			d.Kill9()
		}
		b.ReportMetric(float64(startup)/float64(count), "startup-requests/daemon")
		b.ReportMetric(float64(idle)/window.Minutes(), "server-requests/min")
		b.ReportMetric(cpu/float64(count), "cpu-s/daemon")
		b.ReportMetric(rss/float64(count), "rss-MB/daemon")
		b.ReportMetric(0, "ns/op")
	}
}

// cpuSeconds is the user and system CPU time a process has used.
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// After the command: state is field 3, utime 14 and stime 15 (1-based, in clock ticks).
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}
