// Package metrics exports what a rebootmgr daemon knows of its node in the Prometheus text
// format: whether a reboot is required, which gate holds it back, its place in the reboot lock,
// its tasks, and its requests to Consul. Every value comes from what the daemon already did;
// a scrape never asks Consul anything.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/tasks"
)

// gateLabels are the values of the gate label: every gate's, and "error".
func gateLabels() []string {
	var out []string
	for _, e := range ending.List() {
		out = append(out, e.Label)
	}
	return append(out, "error")
}

// gateLabel names the gate a run ended at; "error" is a run that failed for an operational
// reason (Consul unreachable or denying, bad configuration).
func gateLabel(err error) string {
	if e, ok := ending.Of(err); ok {
		return e.Label
	}
	return "error"
}

// phaseLabels are the values of the phase label: idle is a node that holds no lock.
func phaseLabels() []string {
	return []string{"idle", string(lock.Preparing), string(lock.Rebooting), string(lock.Finishing)}
}

// Metrics are one daemon's metrics.
type Metrics struct {
	version string
	group   string
	node    string
	info    *prometheus.GaugeVec

	runs           *prometheus.CounterVec
	lastRun        prometheus.Gauge
	required       prometheus.Gauge
	blocked        *prometheus.GaugeVec
	lockHeld       prometheus.Gauge
	phase          *prometheus.GaugeVec
	holders        *prometheus.GaugeVec
	lastReboot     prometheus.Gauge
	taskDuration   *prometheus.HistogramVec
	taskFailures   *prometheus.CounterVec
	consulRequests *prometheus.CounterVec
	consulErrors   prometheus.Counter
	consulUp       prometheus.Gauge
	operator       prometheus.Gauge
}

// New makes a daemon's metrics and registers them, with the Go runtime's and the process's, on
// reg. Identify names the node before the first run is observed.
func New(reg prometheus.Registerer, version string) (*Metrics, error) {
	m := &Metrics{
		version: version,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rebootmgr_runs_total",
			Help: "Evaluations (pipeline runs, and looks at the lock while waiting for it) by result: nothing_to_do, reboot_started, finished, dry_run_passed, or the gate it ended at.",
		}, []string{"result"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rebootmgr_last_run_timestamp_seconds",
			Help: "When the last pipeline run ended (Unix time).",
		}),
		required: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rebootmgr_reboot_required",
			Help: "1 when a reboot of this node is requested (file, key, or a lock it holds), as the last run that looked saw it.",
		}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rebootmgr_blocked",
			Help: "1 for the gate the last run ended at (" + strings.Join(gateLabels(), ", ") + "); all 0 when it passed every gate or had nothing to do.",
		}, []string{"gate"}),
		lockHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rebootmgr_lock_held",
			Help: "1 while this node holds its group's reboot lock.",
		}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rebootmgr_phase",
			Help: "1 for this node's phase in the reboot lock: idle (no lock), preparing, rebooting, finishing.",
		}, []string{"phase"}),
		holders: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rebootmgr_lock_holders",
			Help: "Nodes holding the group's reboot lock, as this daemon last read it.",
		}, []string{"group"}),
		lastReboot: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rebootmgr_last_reboot_timestamp_seconds",
			Help: "When this daemon last finished a reboot of its node (Unix time; 0 until it has).",
		}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rebootmgr_task_duration_seconds",
			Help:    "How long each pre- and post-boot task ran, whatever its end.",
			Buckets: []float64{0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"phase", "task"}),
		taskFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rebootmgr_task_failures_total",
			Help: "Tasks that failed or timed out.",
		}, []string{"phase", "task"}),
		consulRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rebootmgr_consul_requests_total",
			Help: "Requests to the Consul agent by HTTP status (error: no response).",
		}, []string{"code"}),
		consulErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rebootmgr_consul_errors_total",
			Help: "Requests to the Consul agent that failed: no response, a 5xx, or a 4xx other than 404 (no such key) and 409 (a check-and-set that lost a race).",
		}),
		consulUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rebootmgr_consul_up",
			Help: "1 when the daemon's last request to the Consul agent was answered (any status below 500), 0 when it was not.",
		}),
		operator: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rebootmgr_waiting_for_operator",
			Help: "1 when the node's last run ended where only an operator can go on (did not reboot, a task failed or the node is disabled by one, the lock lost); the daemon's status says what resolves it.",
		}),
	}
	m.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rebootmgr_build_info",
		Help: "1, labelled with the version and the node's name and group.",
	}, []string{"version", "node", "group"})
	if err := m.register(reg); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers every metric (and the Go runtime's and the process's) with reg, and sets
// each to its starting value.
func (m *Metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		m.runs, m.lastRun, m.required, m.blocked, m.lockHeld, m.phase, m.holders, m.lastReboot,
		m.taskDuration, m.taskFailures, m.consulRequests, m.consulErrors, m.consulUp, m.operator, m.info,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	for _, g := range gateLabels() {
		m.blocked.WithLabelValues(g)
	}
	m.setPhase("idle")
	return nil
}

// Identify names the node the metrics are of, and its group. It is called once, before the
// metrics are served and the first run is observed.
func (m *Metrics) Identify(node, group string) {
	m.node, m.group = node, group
	m.info.WithLabelValues(m.version, node, group).Set(1)
}

// ObserveRun takes in a pipeline run that ended at now.
func (m *Metrics) ObserveRun(res pipeline.Result, err error, now time.Time) {
	m.lastRun.Set(float64(now.UnixNano()) / 1e9)
	result := RunResult(res, err)
	m.runs.WithLabelValues(result).Inc()
	gate := ""
	if err != nil {
		gate = result
	}
	// As the daemon's status and its check in Consul judge it: a node a failed task disabled
	// waits for an operator on every run after the failure, not only on the first.
	m.operator.Set(bool01(ending.WaitsForOperator(err)))
	for _, g := range gateLabels() {
		m.blocked.WithLabelValues(g).Set(bool01(g == gate))
	}

	if res.Seen.Asked {
		m.required.Set(bool01(res.Seen.Required != ""))
	}
	if rec := res.Seen.Lock; rec != nil {
		m.holders.WithLabelValues(m.group).Set(float64(len(rec.Holders)))
		h, held := rec.Holder(m.node)
		m.lockHeld.Set(bool01(held))
		if held {
			m.setPhase(string(h.Phase))
		} else {
			m.setPhase("idle")
		}
	}
	if err == nil && res.Outcome == pipeline.Finished {
		m.lastReboot.Set(float64(now.UnixNano()) / 1e9)
		m.required.Set(0)
	}
}

// RunResult names how a run ended: its outcome, or the gate it ended at, or "error".
func RunResult(res pipeline.Result, err error) string {
	if err != nil {
		return gateLabel(err)
	}
	return strings.ReplaceAll(res.Outcome.String(), " ", "_")
}

func (m *Metrics) setPhase(phase string) {
	for _, p := range phaseLabels() {
		m.phase.WithLabelValues(p).Set(bool01(p == phase))
	}
}

// ObserveTask takes in a task that ran (the signature of tasks.Runner.Observe).
func (m *Metrics) ObserveTask(phase, task string, took time.Duration, err error) {
	m.taskDuration.WithLabelValues(phase, task).Observe(took.Seconds())
	var te *tasks.Error
	if errors.As(err, &te) {
		m.taskFailures.WithLabelValues(phase, task).Inc()
	}
}

// Transport counts the requests that go through next (the Consul client's transport).
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil && req.Context().Err() != nil {
			// Ended by the daemon itself (a watch it stopped, a shutdown): no answer was due.
			return resp, err
		}
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.consulRequests.WithLabelValues(code).Inc()
		m.consulUp.Set(bool01(err == nil && resp.StatusCode < 500))
		if failed(resp, err) {
			m.consulErrors.Inc()
		}
		return resp, err
	})
}

// failed says whether a request failed: no response, a 5xx, or a 4xx other than 404 (a key
// that does not exist, which is an answer) and 409 (a transaction's check-and-set that lost a
// race, which the pipeline reads again and judges).
func failed(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusConflict:
		return false
	}
	return resp.StatusCode >= 300
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Server serves /metrics from a registry.
type Server struct {
	Addr     string
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// Listen binds the address, so that a port taken is an error at start, not later.
func (s Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends.
func (s Server) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelError)}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.Logger.Info("serving metrics", logkey.Addr, ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-served
	return nil
}
