package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/tasks"
)

func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	m.Identify("n1", "computes")
	return m, reg
}

func record(holders ...lock.Holder) *lock.Record {
	return &lock.Record{Version: lock.Version, Holders: holders}
}

// TestObserveRun follows one node through a reboot, run after run: each step is a run's result
// and what the metrics say after it.
func TestObserveRun(t *testing.T) {
	m, _ := newMetrics(t)
	t0 := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	type want struct {
		required, lockHeld, holders, operator float64
		phase, blocked                        string
		lastReboot                            time.Time
	}
	steps := []struct {
		name string
		res  pipeline.Result
		err  error
		want want
	}{
		{"nothing to do",
			pipeline.Result{Outcome: pipeline.NothingToDo, Seen: pipeline.Seen{Lock: record(), Asked: true}}, nil,
			want{phase: "idle"}},
		{"required, waiting for another holder",
			pipeline.Result{Seen: pipeline.Seen{Lock: record(lock.Holder{Node: "n2", Phase: lock.Rebooting}), Asked: true, Required: "file /run/reboot_required"}},
			fmt.Errorf("cannot take the reboot lock: %w", ending.ErrLockHeld),
			want{required: 1, holders: 1, phase: "idle", blocked: "lock_held"}},
		{"stopped before looking: what is not seen again stays",
			pipeline.Result{}, fmt.Errorf("halted: %w", ending.ErrStopped),
			want{required: 1, holders: 1, phase: "idle", blocked: "stop"}},
		{"Consul unreachable",
			pipeline.Result{}, errors.New("connection refused"),
			want{required: 1, holders: 1, phase: "idle", blocked: "error"}},
		{"reboot started",
			pipeline.Result{Outcome: pipeline.RebootStarted, Seen: pipeline.Seen{Lock: record(lock.Holder{Node: "n1", Phase: lock.Rebooting}), Asked: true, Required: "key reboot_required"}}, nil,
			want{required: 1, lockHeld: 1, holders: 1, phase: "rebooting"}},
		{"unhealthy after the reboot",
			pipeline.Result{Seen: pipeline.Seen{Lock: record(lock.Holder{Node: "n1", Phase: lock.Finishing})}},
			fmt.Errorf("health after reboot: %w", ending.ErrUnhealthy),
			want{required: 1, lockHeld: 1, holders: 1, phase: "finishing", blocked: "health"}},
		{"did not reboot: waiting for an operator",
			pipeline.Result{}, fmt.Errorf("boot id unchanged: %w", ending.ErrNotRebooted),
			want{required: 1, lockHeld: 1, holders: 1, phase: "finishing", blocked: "not_rebooted", operator: 1}},
		{"finished",
			pipeline.Result{Outcome: pipeline.Finished, Seen: pipeline.Seen{Lock: record()}}, nil,
			want{phase: "idle", lastReboot: t0.Add(7 * time.Minute)}},
	}
	for i, s := range steps {
		now := t0.Add(time.Duration(i) * time.Minute)
		m.ObserveRun(s.res, s.err, now)
		got := want{
			required: testutil.ToFloat64(m.required),
			lockHeld: testutil.ToFloat64(m.lockHeld),
			holders:  testutil.ToFloat64(m.holders.WithLabelValues("computes")),
			operator: testutil.ToFloat64(m.operator),
		}
		for _, p := range phaseLabels() {
			if testutil.ToFloat64(m.phase.WithLabelValues(p)) == 1 {
				got.phase += p
			}
		}
		for _, g := range gateLabels() {
			if testutil.ToFloat64(m.blocked.WithLabelValues(g)) == 1 {
				got.blocked += g
			}
		}
		if v := testutil.ToFloat64(m.lastReboot); v != 0 {
			got.lastReboot = time.Unix(int64(v), 0).UTC()
		}
		if got != s.want {
			t.Errorf("after %q: got %+v, want %+v", s.name, got, s.want)
		}
		if v := testutil.ToFloat64(m.lastRun); v != float64(now.Unix()) {
			t.Errorf("after %q: last run %v, want %v", s.name, v, now.Unix())
		}
	}
	for result, n := range map[string]float64{"nothing_to_do": 1, "lock_held": 1, "stop": 1, "error": 1, "reboot_started": 1, "health": 1, "not_rebooted": 1, "finished": 1} {
		if got := testutil.ToFloat64(m.runs.WithLabelValues(result)); got != n {
			t.Errorf("runs_total{result=%q} = %v, want %v", result, got, n)
		}
	}
}

func TestRunResult(t *testing.T) {
	for _, tc := range []struct {
		res  pipeline.Result
		err  error
		want string
	}{
		{pipeline.Result{Outcome: pipeline.NothingToDo}, nil, "nothing_to_do"},
		{pipeline.Result{Outcome: pipeline.RebootStarted}, nil, "reboot_started"},
		{pipeline.Result{Outcome: pipeline.Finished}, nil, "finished"},
		{pipeline.Result{Outcome: pipeline.DryRunPassed}, nil, "dry_run_passed"},
		{pipeline.Result{}, ending.ErrStopped, "stop"},
		{pipeline.Result{}, ending.ErrDisabled, "disabled"},
		{pipeline.Result{}, ending.ErrOutsideWindow, "not_now"},
		{pipeline.Result{}, ending.ErrUnhealthy, "health"},
		{pipeline.Result{}, ending.ErrLockHeld, "lock_held"},
		{pipeline.Result{}, ending.ErrLockLost, "lock_lost"},
		{pipeline.Result{}, ending.ErrTaskFailed, "task_failed"},
		{pipeline.Result{}, ending.ErrNotRebooted, "not_rebooted"},
		{pipeline.Result{}, errors.New("403 (Permission denied)"), "error"},
	} {
		if got := RunResult(tc.res, tc.err); got != tc.want {
			t.Errorf("RunResult(%v, %v) = %q, want %q", tc.res.Outcome, tc.err, got, tc.want)
		}
	}
}

func TestObserveTask(t *testing.T) {
	m, _ := newMetrics(t)
	m.ObserveTask(tasks.Pre, "50-evacuate", 90*time.Second, nil)
	m.ObserveTask(tasks.Pre, "50-evacuate", 120*time.Second, &tasks.Error{Task: "50-evacuate", TimedOut: true})
	m.ObserveTask(tasks.Pre, "60-wait", time.Second, fmt.Errorf("task 60-wait ended: %w", ending.ErrStopped))
	if got := testutil.ToFloat64(m.taskFailures.WithLabelValues(tasks.Pre, "50-evacuate")); got != 1 {
		t.Errorf("failures of 50-evacuate = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.taskFailures.WithLabelValues(tasks.Pre, "60-wait")); got != 0 {
		t.Errorf("a task ended by the stop flag counted as failed: %v", got)
	}
	if n := testutil.CollectAndCount(m.taskDuration); n != 2 {
		t.Errorf("%d task duration series, want 2", n)
	}
}

// TestTransportCountsRequestsAndErrors: each request in turn, the counters and whether Consul
// answers after it.
func TestTransportCountsRequestsAndErrors(t *testing.T) {
	m, _ := newMetrics(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/lost-race":
			w.WriteHeader(http.StatusConflict)
		case "/denied":
			w.WriteHeader(http.StatusForbidden)
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
		case "/blocking":
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: m.Transport(http.DefaultTransport)}
	steps := []struct {
		path     string
		code     string // the requests label counted, "" for none
		errors   float64
		up       float64
		cancel   bool
		shutDown bool
	}{
		{path: "/", code: "200", up: 1},
		{path: "/missing", code: "404", up: 1},
		{path: "/lost-race", code: "409", up: 1},
		{path: "/denied", code: "403", errors: 1, up: 1},
		{path: "/broken", code: "500", errors: 2, up: 0},
		{path: "/", code: "200", errors: 2, up: 1},
		// A watch the daemon stops itself is not a failure, nor a sign of Consul's health.
		{path: "/blocking", cancel: true, errors: 2, up: 1},
		{path: "/", code: "error", errors: 3, up: 0, shutDown: true},
	}
	counted := map[string]float64{}
	for _, s := range steps {
		if s.shutDown {
			srv.Close()
		}
		ctx, cancel := context.WithCancel(t.Context())
		if s.cancel {
			time.AfterFunc(50*time.Millisecond, cancel)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+s.path, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
		if s.code != "" {
			counted[s.code]++
		}
		for code, n := range counted {
			if got := testutil.ToFloat64(m.consulRequests.WithLabelValues(code)); got != n {
				t.Errorf("after %s: requests{code=%s} = %v, want %v", s.path, code, got, n)
			}
		}
		if got := testutil.ToFloat64(m.consulErrors); got != s.errors {
			t.Errorf("after %s: errors = %v, want %v", s.path, got, s.errors)
		}
		if got := testutil.ToFloat64(m.consulUp); got != s.up {
			t.Errorf("after %s: consul_up = %v, want %v", s.path, got, s.up)
		}
	}
}

func TestServer(t *testing.T) {
	_, reg := newMetrics(t)
	s := Server{Addr: "127.0.0.1:0", Gatherer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`rebootmgr_build_info{group="computes",node="n1",version="v1.2.3"} 1`,
		`rebootmgr_phase{phase="idle"} 1`,
		`rebootmgr_blocked{gate="health"} 0`,
		"process_resident_memory_bytes",
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if _, err := (Server{Addr: ln.Addr().String(), Logger: s.Logger}).Listen(); err == nil {
		t.Error("a second server listened on a taken port")
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

// TestWaitingForOperator: the metric says what the daemon's status says, run after run; a node
// a failed task disabled waits for an operator on every run after the failure, not only the
// first.
func TestWaitingForOperator(t *testing.T) {
	byTask := &ending.Error{Gate: ending.ErrDisabled, Err: ending.ErrDisabledByTask, Msg: "node n1 is disabled: pre task 50-drain failed"}
	byOperator := &ending.Error{Gate: ending.ErrDisabled, Msg: "node n1 is disabled: kernel testing"}
	m, _ := newMetrics(t)
	for _, s := range []struct {
		name string
		err  error
		want float64
	}{
		{"a task failed", fmt.Errorf("pre tasks: %w", ending.ErrTaskFailed), 1},
		{"the next run: disabled by the failed task", byTask, 1},
		{"and the one after", byTask, 1},
		{"enabled again: nothing to do", nil, 0},
		{"disabled by an operator", byOperator, 0},
		{"did not reboot", ending.ErrNotRebooted, 1},
		{"lost the lock", ending.ErrLockLost, 1},
		{"waiting for health", ending.ErrUnhealthy, 0},
	} {
		m.ObserveRun(pipeline.Result{}, s.err, time.Now())
		if got := testutil.ToFloat64(m.operator); got != s.want {
			t.Errorf("after %q: waiting_for_operator = %v, want %v", s.name, got, s.want)
		}
		if got, want := testutil.ToFloat64(m.operator) == 1, ending.WaitsForOperator(s.err); got != want {
			t.Errorf("after %q: the metric says %v, the daemon's status %v", s.name, got, want)
		}
	}
}
