package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/window"
)

// machine is one node and its Consul, in memory: the state machine runs against it without
// Consul, each run as a new process would (a new Pipeline on the same store and files).
type machine struct {
	t      *testing.T
	store  *pipelinetest.Store
	clock  *pipelinetest.Clock
	health *pipelinetest.Health
	tasks  *pipelinetest.Tasks
	reboot *pipelinetest.Rebooter
	// notifier, when set, hears every notification.
	notifier func(kind string)
	// sentinels are the reboot-required commands; command is one that says no until told.
	sentinels []gate.Sentinel
	command   *pipelinetest.Sentinel
	config    pipeline.Config
	boots     int
	dir       string
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	m := &machine{
		t:      t,
		store:  pipelinetest.NewStore("default", "n1"),
		clock:  pipelinetest.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)),
		health: &pipelinetest.Health{},
		tasks:  &pipelinetest.Tasks{},
		reboot: &pipelinetest.Rebooter{},
		config: pipeline.Config{Node: "n1", CheckTriggers: true, Deadline: 30 * time.Minute},
		boots:  1,
		dir:    t.TempDir(),
	}
	m.command = &pipelinetest.Sentinel{Name: "needrestart -b | grep -q 'KSTA: 3'"}
	m.sentinels = []gate.Sentinel{m.command}
	m.config.TriggerFiles = []string{m.triggerFile()}
	m.health.Set(pipelinetest.Service("galera", nil, "n1", "n2"))
	return m
}

func (m *machine) note() pipeline.RebootNote {
	return pipeline.RebootNote(filepath.Join(m.dir, "rebootmgr.reboot"))
}

// boot is a reboot of the machine: a new boot id, and /run emptied.
func (m *machine) boot() {
	m.boots++
	if err := os.Remove(string(m.note())); err != nil && !os.IsNotExist(err) {
		m.t.Fatal(err)
	}
}

type notifier func(kind string)

func (n notifier) Tell(_ context.Context, kind, _ string) { n(kind) }

func (m *machine) pipeline() *pipeline.Pipeline {
	p := &pipeline.Pipeline{
		Config:    m.config,
		Store:     m.store,
		Health:    m.health,
		Tasks:     m.tasks,
		Rebooter:  m.reboot,
		Clock:     m.clock,
		Sentinels: m.sentinels,
		BootID:    func() (string, error) { return "boot-" + string(rune('0'+m.boots)), nil },
		Note:      m.note(),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if m.notifier != nil {
		p.Notifier = notifier(m.notifier)
	}
	return p
}

func (m *machine) run(ctx context.Context) (pipeline.Result, error) {
	return m.pipeline().Run(ctx)
}

func (m *machine) lock() lock.Record {
	rec, _, err := m.store.Lock(context.Background())
	if err != nil {
		m.t.Fatal(err)
	}
	return rec
}

// clean checks that nothing of a reboot is left: no place, no maintenance, no request.
func (m *machine) clean() {
	m.t.Helper()
	if rec := m.lock(); len(rec.Holders) != 0 {
		m.t.Errorf("lock left: %+v", rec)
	}
	if f := m.store.Fleet(); len(f.Holders) != 0 {
		m.t.Errorf("fleet's holders left: %v", f.Holders)
	}
	if r := m.store.Maintenance(); r != "" {
		m.t.Errorf("maintenance left: %s", r)
	}
	if f, _ := m.store.Trigger(context.Background(), "n1"); f.Set {
		m.t.Errorf("request left: %+v", f)
	}
}

// TestStateMachine: a whole reboot, phase by phase: preparing with a place in the group's record
// and the fleet's, rebooting with maintenance on and the command noted, a next run on the same
// boot that does not reboot again, and finishing after the boot that leaves nothing behind.
func TestStateMachine(t *testing.T) {
	m := newMachine(t)
	m.store.SetTrigger("n1", "kernel", true)
	m.reboot.During = func() {
		h, ok := m.lock().Holder("n1")
		if !ok || h.Phase != lock.Rebooting || m.store.Maintenance() == "" {
			t.Errorf("reboot command run with lock %+v, maintenance %q", m.lock(), m.store.Maintenance())
		}
		if g, _ := m.store.Fleet().Group("n1"); g != "default" {
			t.Errorf("reboot command run without a place in the fleet's holders: %v", m.store.Fleet().Holders)
		}
	}
	res, err := m.run(t.Context())
	if err != nil || res.Outcome != pipeline.RebootStarted || m.reboot.Count() != 1 {
		t.Fatalf("first run: %v, %v, %d reboots", res, err, m.reboot.Count())
	}
	if ran, _ := m.note().Has("boot-1"); !ran {
		t.Fatal("the reboot command was not noted")
	}
	if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrNotRebooted) || m.reboot.Count() != 1 {
		t.Fatalf("a run on the same boot: %v, %d reboots", err, m.reboot.Count())
	}
	m.boot()
	res, err = m.run(t.Context())
	if err != nil || res.Outcome != pipeline.Finished {
		t.Fatalf("after the boot: %v, %v", res, err)
	}
	m.clean()
	if got := m.tasks.Runs(); !slices.Equal(got, []string{pipeline.PreBoot, pipeline.PostBoot}) {
		t.Fatalf("tasks run: %v", got)
	}
	l, _, _ := m.store.History(t.Context())
	if len(l.Entries) != 1 || l.Entries[0].Outcome != history.Finished {
		t.Fatalf("history: %+v", l)
	}
	if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.NothingToDo {
		t.Fatalf("a run after it all: %v, %v", res, err)
	}
}

// TestCrashAfterEachWrite: the process dies after each write of a whole reboot, in turn, and is
// started again: every time the node reboots exactly once and nothing is left behind.
func TestCrashAfterEachWrite(t *testing.T) {
	writes := func() int {
		m := newMachine(t)
		m.store.SetTrigger("n1", "", true)
		start := m.store.Writes()
		if _, err := m.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		m.boot()
		if _, err := m.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		return m.store.Writes() - start
	}()
	if writes < 8 {
		t.Fatalf("a whole reboot writes %d times: too few to be the whole", writes)
	}
	for k := 1; k <= writes; k++ {
		m := newMachine(t)
		m.store.SetTrigger("n1", "", true)
		base := m.store.Writes()
		ctx, kill := context.WithCancel(t.Context())
		m.store.AfterWrite = func(n int) {
			if n == base+k {
				kill()
			}
		}
		booted := 0
		for attempt := 0; ; attempt++ {
			if attempt > 6 {
				t.Fatalf("kill after write %d: no end after %d runs; lock %+v", k, attempt, m.lock())
			}
			res, err := m.run(ctx)
			if ctx.Err() != nil {
				ctx = t.Context() // started again
				continue
			}
			if m.reboot.Count() > booted {
				booted = m.reboot.Count()
				m.boot()
				continue
			}
			if err != nil {
				t.Fatalf("kill after write %d: run %d: %v", k, attempt, err)
			}
			if res.Outcome == pipeline.NothingToDo || res.Outcome == pipeline.Finished {
				if f, _ := m.store.Trigger(t.Context(), "n1"); !f.Set {
					break
				}
			}
		}
		if m.reboot.Count() != 1 {
			t.Fatalf("kill after write %d: %d reboots", k, m.reboot.Count())
		}
		m.clean()
		// The reboot is in the group's history once: neither lost by the kill nor recorded twice
		// by the run that finished it again.
		l, _, err := m.store.History(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		finished := 0
		for _, e := range l.Entries {
			if e.Node == "n1" && e.Outcome == history.Finished {
				finished++
			}
		}
		if finished != 1 {
			t.Fatalf("kill after write %d: the history holds %d finished reboots, want 1: %+v", k, finished, l.Entries)
		}
	}
}

// TestGates: every gate, alone, ends the run there, says why, and leaves the lock as the
// docs/design.md says (a halt keeps the place; other gates before the reboot give it back).
func TestGates(t *testing.T) {
	other := func(phase lock.Phase) lock.Record {
		rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "n2", Phase: phase, Since: time.Now()}, 1)
		return rec
	}
	for _, tt := range []struct {
		name  string
		setup func(m *machine)
		gate  error
		// mention is part of the message; place whether this node holds a place after it.
		mention string
		place   bool
	}{
		{"stop flag", func(m *machine) { m.store.SetStop("freeze", true) }, ending.ErrStopped, "freeze", false},
		{"group stop flag", func(m *machine) { m.store.SetGroupStop("nova", true) }, ending.ErrStopped, "group default: nova", false},
		{"disabled", func(m *machine) { m.store.Put("n1/disabled", "disk") }, ending.ErrDisabled, "disk", false},
		{"another holder, limit 1", func(m *machine) {
			m.health.Set(pipelinetest.Service("galera", nil, "n1"))
			m.store.PutLock(other(lock.Preparing))
		}, ending.ErrLockHeld, "n2", false},
		{"this node failing", func(m *machine) {
			svc := pipelinetest.Service("galera", nil, "n1")
			svc.Instances[0].Checks[0].Status = "critical"
			m.health.Set(svc)
		}, ending.ErrUnhealthy, "galera", false},
		{"another group's holder in flight", func(m *machine) {
			m.health.Set(pipelinetest.Service("cassandra", []string{"max_failing=0"}, "n1", "n2"))
			f := lock.Fleet{}.With("n2", "other")
			data, _ := f.Encode()
			m.store.Put("holders", string(data))
		}, ending.ErrUnhealthy, "reboot in flight", false},
		{"a Python rebootmgr's marker", func(m *machine) { m.store.SetLegacy("reboot_in_progress", "n7", true) }, ending.ErrLockHeld, "Python", false},
		{"outside the window", func(m *machine) {
			w, err := window.Parse("Mon 03:00-04:00 UTC")
			if err != nil {
				panic(err)
			}
			m.config.Schedule = window.Schedule{Windows: []window.Window{w}}
		}, ending.ErrOutsideWindow, "window", false},
		{"within the cooldown", func(m *machine) {
			m.config.Cooldown = time.Hour
			now := m.clock.Now()
			if _, err := m.store.AppendHistory(context.Background(), history.Entry{Node: "n9", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished}); err != nil {
				panic(err)
			}
		}, ending.ErrOutsideWindow, "cooldown", false},
		{"stop flag during the tasks", func(m *machine) {
			m.tasks.During = func(ctx context.Context, _ string) error {
				m.store.SetStop("mid-task", true)
				<-ctx.Done()
				return context.Cause(ctx)
			}
		}, ending.ErrStopped, "mid-task", true},
		{"stop flag set by the reboot's announcement", func(m *machine) {
			m.notifier = func(kind string) {
				if kind == pipeline.NotifyRebootStarted {
					m.store.SetStop("webhook", true)
				}
			}
		}, ending.ErrStopped, "webhook", true},
		{"disabled at the reboot's announcement", func(m *machine) {
			m.notifier = func(kind string) {
				if kind == pipeline.NotifyRebootStarted {
					m.store.Put("n1/disabled", "by ops, late")
				}
			}
		}, ending.ErrDisabled, "by ops, late", false},
		{"limit lowered while preparing", func(m *machine) {
			m.health.Set(pipelinetest.Service("galera", nil, "n1"))
			m.store.SetLimit(2)
			m.store.PutLock(other(lock.Rebooting))
			m.tasks.During = func(context.Context, string) error { m.store.SetLimit(1); return nil }
		}, ending.ErrLockHeld, "keeps its place", true},
		{"a task fails", func(m *machine) { m.tasks.Fail = map[string]error{pipeline.PreBoot: errors.New("evacuation failed")} }, ending.ErrTaskFailed, "evacuation failed", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.store.SetTrigger("n1", "", true)
			tt.setup(m)
			_, err := m.run(t.Context())
			if !errors.Is(err, tt.gate) || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("run ended with %v; want %v mentioning %q", err, tt.gate, tt.mention)
			}
			if m.reboot.Count() != 0 {
				t.Fatal("rebooted")
			}
			h, holds := m.lock().Holder("n1")
			if holds != tt.place || (holds && h.Phase != lock.Preparing) {
				t.Fatalf("lock after the gate: %+v; want a place: %v", m.lock(), tt.place)
			}
			if _, inFleet := m.store.Fleet().Group("n1"); inFleet != holds {
				t.Fatalf("the fleet's holders (%v) and the group's record (%+v) disagree", m.store.Fleet().Holders, m.lock())
			}
		})
	}
}

// TestUnwrittenMarkHalts: a task fails and its disabled mark cannot be written: the node halts,
// every later run tries only to write the mark, and once it can, the disabled gate holds it.
func TestUnwrittenMarkHalts(t *testing.T) {
	m := newMachine(t)
	m.store.SetTrigger("n1", "", true)
	m.tasks.Fail = map[string]error{pipeline.PreBoot: errors.New("evacuation failed")}
	m.store.FailDisabledWrites(true)
	p := m.pipeline()
	if _, err := p.Run(t.Context()); !errors.Is(err, ending.ErrTaskFailed) {
		t.Fatalf("first run: %v", err)
	}
	for range 3 {
		if _, err := p.Run(t.Context()); !errors.Is(err, ending.ErrDisabled) || !strings.Contains(err.Error(), "cannot be written") {
			t.Fatalf("a run with the mark unwritten: %v", err)
		}
	}
	if got := len(m.tasks.Runs()); got != 1 {
		t.Fatalf("the failing task ran %d times", got)
	}
	m.store.FailDisabledWrites(false)
	if _, err := p.Run(t.Context()); !errors.Is(err, ending.ErrDisabled) || !strings.Contains(err.Error(), "evacuation failed") {
		t.Fatalf("the run that writes the mark: %v", err)
	}
	if f, _ := m.store.Disabled(t.Context(), "n1"); !f.Set {
		t.Fatal("mark not written once it could be")
	}
}

// TestCommandThatNeverRan: the lock says rebooting on this boot, but the command was never
// noted: the run puts it back to preparing, starts over, and reboots once.
func TestCommandThatNeverRan(t *testing.T) {
	m := newMachine(t)
	m.store.SetTrigger("n1", "", true)
	rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: m.clock.Now(), BootID: "boot-1"}, 1)
	m.store.PutLock(rec)
	f := lock.Fleet{}.With("n1", "default")
	data, _ := f.Encode()
	m.store.Put("holders", string(data))
	res, err := m.run(t.Context())
	if err != nil || res.Outcome != pipeline.RebootStarted || m.reboot.Count() != 1 {
		t.Fatalf("%v, %v, %d reboots", res, err, m.reboot.Count())
	}
}

// TestClockJumps: the clock set back after a reboot started does not make the holder look past
// its deadline, and set forward past it makes the next run stop the group, keeping the lock.
// (The time is the pipeline's clock; the deadline is a point in it, so a jump moves it.)
func TestClockJumps(t *testing.T) {
	m := newMachine(t)
	m.store.SetTrigger("n1", "", true)
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := m.clock.Now()
	m.clock.Set(start.Add(-24 * time.Hour))
	if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrNotRebooted) {
		t.Fatalf("clock set back: %v", err)
	}
	if f, _ := m.store.Stop(t.Context()); f.Set {
		t.Fatalf("group stopped with the clock set back: %+v", f)
	}
	m.clock.Set(start.Add(time.Hour))
	if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrNotRebooted) {
		t.Fatalf("clock past the deadline: %v", err)
	}
	if f, _ := m.store.Stop(t.Context()); !f.Set || !strings.Contains(f.Value, "did not finish its reboot by its deadline") {
		t.Fatalf("group not stopped past the deadline: %+v", f)
	}
	if h, ok := m.lock().Holder("n1"); !ok || h.Phase != lock.Rebooting {
		t.Fatalf("lock after the deadline: %+v", m.lock())
	}
}

// TestRebootCommandFails: a reboot command that fails is recorded in the history and told,
// and the lock stays in phase rebooting for an operator.
func TestRebootCommandFails(t *testing.T) {
	m := newMachine(t)
	m.store.SetTrigger("n1", "", true)
	m.reboot.Err = errors.New("systemctl: connection refused")
	var told []string
	m.notifier = func(kind string) { told = append(told, kind) }
	if _, err := m.run(t.Context()); err == nil || !strings.Contains(err.Error(), "reboot command failed") {
		t.Fatalf("run: %v", err)
	}
	l, _, _ := m.store.History(t.Context())
	if len(l.Entries) != 1 || l.Entries[0].Outcome != history.RebootFailed || !strings.Contains(l.Entries[0].Detail, "connection refused") {
		t.Fatalf("history: %+v", l)
	}
	if !slices.Contains(told, pipeline.NotifyRebootFailed) {
		t.Fatalf("told: %v", told)
	}
	if h, _ := m.lock().Holder("n1"); h.Phase != lock.Rebooting {
		t.Fatalf("lock: %+v", m.lock())
	}
}

// TestNotRebootedReportedOnce: a reboot command that ran and did not reboot the machine is
// recorded in the history and told once, after the time a reboot takes to take the machine
// down, however often it is seen; the lock stays in phase rebooting for an operator.
func TestNotRebootedReportedOnce(t *testing.T) {
	m := newMachine(t)
	m.store.SetTrigger("n1", "", true)
	var told []string
	m.notifier = func(kind string) { told = append(told, kind) }
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	outcomes := func() (out []string) {
		l, _, _ := m.store.History(t.Context())
		for _, e := range l.Entries {
			out = append(out, e.Outcome)
		}
		return out
	}
	// Right after the command, the machine may be going down still: nothing said.
	if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrNotRebooted) || len(outcomes()) != 0 {
		t.Fatalf("a run right after the command: %v, history %v", err, outcomes())
	}
	m.clock.Set(m.clock.Now().Add(pipeline.NotRebootedAfter))
	for range 3 {
		if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrNotRebooted) {
			t.Fatalf("a run on the same boot: %v", err)
		}
	}
	if got := outcomes(); !slices.Equal(got, []string{history.NotRebooted}) {
		t.Fatalf("history: %v", got)
	}
	if !slices.Equal(told, []string{pipeline.NotifyRebootStarted, pipeline.NotifyNotRebooted}) {
		t.Fatalf("told: %v", told)
	}
	if h, _ := m.lock().Holder("n1"); h.Phase != lock.Rebooting {
		t.Fatalf("lock: %+v", m.lock())
	}
}

// TestDeadlineReportedOnce: a holder past its deadline stops its group once, with the miss in
// the history; back, it finishes its reboot under that stop (nothing else in the group starts
// until an operator has looked and resumed), and nothing stops the group for it again.
func TestDeadlineReportedOnce(t *testing.T) {
	m := newMachine(t)
	m.store.SetTrigger("n1", "", true)
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.clock.Set(m.clock.Now().Add(time.Hour))
	m.boot()
	if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.Finished {
		t.Fatalf("the run past the deadline: %v, %v", res, err)
	}
	l, _, _ := m.store.History(t.Context())
	if len(l.Entries) != 2 || l.Entries[0].Outcome != history.DeadlinePassed || l.Entries[1].Outcome != history.Finished {
		t.Fatalf("history: %+v", l)
	}
	if f, _ := m.store.Stop(t.Context()); !f.Set || !strings.Contains(f.Value, "did not finish its reboot by its deadline") {
		t.Fatalf("the group is not stopped for the miss: %+v", f)
	}
	m.clean()
	m.store.SetGroupStop("", false) // rebootmgr resume
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f, _ := m.store.Stop(t.Context()); f.Set {
		t.Fatalf("the group stopped again for a miss already reported: %+v", f)
	}
}

// TestLimits: a group's limit as a number, auto or a share, and bounded per zone, against the
// holders already there. The node runs nova-compute (max_failing=2, on n1..n6: a node may go
// while at most two others are down) unless it runs nothing, or only dkms (local_only): under
// auto, a node with no rule over the fleet reboots only alone, and no node takes a place beside
// one that holds a place. Under a limit per zone, a node of no zone is a zone of its own.
func TestLimits(t *testing.T) {
	computes := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	nova := pipelinetest.Service("nova-compute", []string{"max_failing=2"}, computes...)
	dkms := func(node string) health.Service { return pipelinetest.Service("dkms", []string{"local_only"}, node) }
	for _, tt := range []struct {
		name    string
		limit   string
		nodes   int // the group's nodes known to Consul
		zone    string
		holders []lock.Holder
		none    bool // the node runs no tagged service
		takes   bool
		says    string
		// local are the nodes that run only dkms (local_only), n1 among them or not.
		local []string
	}{
		{"a number, room", "2", 6, "", []lock.Holder{{Node: "n2"}}, false, true, "", nil},
		{"a number, full", "2", 6, "", []lock.Holder{{Node: "n2"}, {Node: "n3"}}, false, false, "limit 2", nil},
		{"auto: the rules allow a third", "auto", 6, "", []lock.Holder{{Node: "n2"}, {Node: "n3"}}, false, true, "", nil},
		{"auto: the rules allow no fourth", "auto", 6, "", []lock.Holder{{Node: "n2"}, {Node: "n3"}, {Node: "n4"}}, false, false, "max_failing=2", nil},
		{"auto, no rule: not beside another", "auto", 6, "", []lock.Holder{{Node: "x9"}}, true, false, "reboots only alone", nil},
		{"auto, no rule: alone", "auto", 6, "", nil, true, true, "", nil},
		{"auto: not beside a holder with no rule", "auto", 6, "", []lock.Holder{{Node: "x9"}}, false, false, "x9 holds a place and runs no service with a rule over the fleet", nil},
		{"auto: not beside a holder with only local_only services", "auto", 6, "", []lock.Holder{{Node: "n2"}}, false, false, "n2 holds a place and runs no service with a rule over the fleet", []string{"n2"}},
		{"auto: local_only is no rule: not beside another", "auto", 6, "", []lock.Holder{{Node: "n2"}}, false, false, "reboots only alone", []string{"n1"}},
		{"auto: local_only is no rule: alone", "auto", 6, "", nil, false, true, "", []string{"n1"}},
		{"a share: 34% of 6 is 2", "34%", 6, "", []lock.Holder{{Node: "n2"}}, false, true, "", nil},
		{"a share: full", "34%", 6, "", []lock.Holder{{Node: "n2"}, {Node: "n3"}}, false, false, "limit 2", nil},
		{"a share of few is one", "10%", 6, "", nil, false, true, "", nil},
		{"per zone: its own zone has room", "auto per-zone=2", 6, "rack-a", []lock.Holder{{Node: "n2", Zone: "rack-a"}}, false, true, "", nil},
		{"per zone: another zone reboots", "auto per-zone=2", 6, "rack-a", []lock.Holder{{Node: "n2", Zone: "rack-b"}}, false, false, "one zone at a time", nil},
		{"per zone: its zone is full", "3 per-zone=1", 6, "rack-a", []lock.Holder{{Node: "n2", Zone: "rack-a"}}, false, false, "per zone", nil},
		{"per zone: no zone, not beside another of no zone", "auto per-zone=2", 6, "", []lock.Holder{{Node: "n2"}}, false, false, "has no zone", nil},
		{"per zone: a holder of no zone keeps a zone out", "auto per-zone=2", 6, "rack-a", []lock.Holder{{Node: "n2"}}, false, false, "has no zone", nil},
		{"per zone: no zone, alone", "auto per-zone=2", 6, "", nil, false, true, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.config.Zone = tt.zone
			m.health.Set(nova)
			if tt.none {
				m.health.Set()
			}
			for _, n := range tt.local {
				if n == "n1" {
					m.health.Set(dkms(n))
				} else {
					m.health.SetOf(n, dkms(n))
				}
			}
			m.store.SetLimitSpec(tt.limit)
			m.store.GroupNodes = tt.nodes
			rec := lock.Record{Version: lock.Version}
			f := lock.Fleet{}
			for _, h := range tt.holders {
				h.Phase, h.Since = lock.Preparing, m.clock.Now()
				rec.Holders = append(rec.Holders, h)
				f = f.With(h.Node, "default")
			}
			m.store.PutLock(rec)
			data, _ := f.Encode()
			m.store.Put("holders", string(data))
			m.store.SetTrigger("n1", "", true)
			_, err := m.run(t.Context())
			_, took := m.lock().Holder("n1")
			if took != tt.takes {
				t.Fatalf("took a place: %v, want %v (%v)", took, tt.takes, err)
			}
			if !tt.takes && (err == nil || !strings.Contains(err.Error(), tt.says)) {
				t.Fatalf("refused with %v, want it to say %q", err, tt.says)
			}
			if h, _ := m.lock().Holder("n1"); took && tt.limit != "" && strings.Contains(tt.limit, "per-zone") && h.Zone != tt.zone {
				t.Fatalf("holder's zone %q, want %q", h.Zone, tt.zone)
			}
		})
	}
}

// queueOf is the group's queue as the machine's store holds it.
func (m *machine) queueOf() lock.Queue {
	m.t.Helper()
	v, err := m.store.View(context.Background())
	if err != nil {
		m.t.Fatal(err)
	}
	return v.Queue
}

func (m *machine) putQueue(q lock.Queue) {
	m.t.Helper()
	if err := m.store.PutQueue(q); err != nil {
		m.t.Fatal(err)
	}
}

// TestQueue: a node that finds the lock full joins its group's queue; a place that opens goes
// to the first node of the queue that may go, for QueueGrace, then to anyone (the first marked
// as having missed its turn); a node blocked by its own gates holds up nobody, keeps its place,
// and is ready again when they pass; a node asked for nothing leaves.
func TestQueue(t *testing.T) {
	m := newMachine(t)
	m.health.Set(pipelinetest.Service("galera", []string{"max_failing=1"}, "n1", "n2"))
	t0 := m.clock.Now()
	m.store.SetTrigger("n1", "", true)
	rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "n2", Phase: lock.Rebooting, Since: t0}, 1)
	m.store.PutLock(rec)
	if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrLockHeld) {
		t.Fatalf("a full lock: %v", err)
	}
	if q := m.queueOf(); len(q.Entries) != 1 || q.Entries[0].Node != "n1" {
		t.Fatalf("queue after a full lock: %+v", q)
	}
	// In the queue, it is told when a place opens: it waits for its turn. One whose entry could
	// not be written is told nothing, and does not.
	for _, tt := range []struct {
		name string
		fail bool
		want bool
	}{{"in the queue", false, true}, {"its entry not written", true, false}} {
		m.store.FailQueueWrites(tt.fail)
		res, err := m.run(t.Context())
		if !errors.Is(err, ending.ErrLockHeld) || pipeline.WaitsForTurn(res, err) != tt.want || res.Seen.Queued != tt.want {
			t.Fatalf("%s: %v, waits for its turn %v, want %v", tt.name, err, pipeline.WaitsForTurn(res, err), tt.want)
		}
		// An entry not written is tried again well within the time a node told has to answer.
		if soon := !res.Recheck.IsZero() && res.Recheck.Sub(m.clock.Now()) <= lock.AnswerWithin/2; soon != tt.fail {
			t.Fatalf("%s: looks again at %v (now %v)", tt.name, res.Recheck, m.clock.Now())
		}
		m.putQueue(lock.Queue{Version: lock.Version})
	}
	m.store.FailQueueWrites(false)

	// n3 asked first; the lock frees: n1 waits n3's turn, then goes.
	m.putQueue(lock.Queue{Version: lock.Version, Entries: []lock.QueueEntry{{Node: "n3", Since: t0.Add(-time.Minute)}, {Node: "n1", Since: t0}}, Freed: t0})
	m.store.PutLock(lock.Record{Version: lock.Version})
	res, err := m.run(t.Context())
	if !errors.Is(err, lock.ErrQueued) || !res.Recheck.Equal(t0.Add(lock.QueueGrace)) {
		t.Fatalf("a free place with n3 first: %v, recheck %v", err, res.Recheck)
	}
	m.clock.Set(t0.Add(lock.QueueGrace))
	if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted {
		t.Fatalf("after n3's turn passed: %v, %v", res, err)
	}
	if q := m.queueOf(); len(q.Entries) != 1 || q.Entries[0].Node != "n3" || q.Entries[0].Blocked != lock.MissedTurn {
		t.Fatalf("queue once n1 took the place: %+v", q)
	}
	m.boot()
	if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.Finished {
		t.Fatalf("finish: %v, %v", res, err)
	}
	if q := m.queueOf(); !q.Freed.Equal(m.clock.Now()) {
		t.Fatalf("a place given back is not noted: %+v", q)
	}

	// n4 first but blocked by its health: n1 goes at once.
	m.store.SetTrigger("n1", "", true)
	m.putQueue(lock.Queue{Version: lock.Version, Entries: []lock.QueueEntry{{Node: "n4", Since: t0, Blocked: "health"}}, Freed: m.clock.Now()})
	if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted {
		t.Fatalf("behind a blocked node: %v, %v", res, err)
	}
	m.boot()
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}

	// n1 queued, then held by its own health: it keeps its place, blocked; then it is ready again.
	m.store.SetTrigger("n1", "", true)
	m.putQueue(lock.Queue{Version: lock.Version, Entries: []lock.QueueEntry{{Node: "n1", Since: t0}}})
	m.health.Set(pipelinetest.Service("galera", []string{"max_failing=1"}, "n1", "n2"), health.Service{Name: "broken", Tags: []string{health.Tag}, Instances: []health.Instance{{Node: "n1", ServiceID: "broken", Checks: []health.Check{{Node: "n1", CheckID: "x", Status: "critical"}}}}})
	if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrUnhealthy) {
		t.Fatalf("unhealthy: %v", err)
	}
	if q := m.queueOf(); len(q.Entries) != 1 || q.Entries[0].Blocked != "health" || !q.Entries[0].Since.Equal(t0) {
		t.Fatalf("queue of a node held by its health: %+v", q)
	}

	// Nothing asks any more: it leaves.
	m.store.SetTrigger("n1", "", false)
	if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.NothingToDo {
		t.Fatalf("%v, %v", res, err)
	}
	if q := m.queueOf(); len(q.Entries) != 0 {
		t.Fatalf("queue of a node asked for nothing: %+v", q)
	}
}

// TestRebootFinishesUnderStop: a stop flag (the fleet's or the group's) set while the node
// reboots, or set by a post-boot task, does not halt the part after the boot: a stop means
// nothing further starts, and this reboot started. The node finishes it (post-boot tasks run
// whole, health, maintenance off, the request deleted) and gives its place back; the flag
// stays, and the next run of the node starts nothing.
func TestRebootFinishesUnderStop(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(m *machine)
	}{
		{"the fleet's stop set while it reboots", func(m *machine) { m.store.SetStop("upgrade", true) }},
		{"the group's stop set while it reboots", func(m *machine) { m.store.SetGroupStop("upgrade", true) }},
		{"a stop set by a post-boot task", func(m *machine) {
			m.tasks.During = func(_ context.Context, phase string) error {
				if phase == pipeline.PostBoot {
					m.store.SetStop("upgrade", true)
				}
				return nil
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.store.SetTrigger("n1", "", true)
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted {
				t.Fatalf("the reboot: %v, %v", res, err)
			}
			tt.set(m)
			m.boot()
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.Finished {
				t.Fatalf("after the boot, stopped: %v, %v", res, err)
			}
			if runs := m.tasks.Runs(); !slices.Contains(runs, pipeline.PostBoot) {
				t.Fatalf("tasks run: %v", runs)
			}
			m.clean()
			m.store.SetTrigger("n1", "", true)
			if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrStopped) {
				t.Fatalf("asked again while stopped: %v", err)
			}
			if len(m.lock().Holders) != 0 || m.reboot.Count() != 1 {
				t.Fatalf("started again while stopped: %+v, %d reboots", m.lock(), m.reboot.Count())
			}
		})
	}
}

// TestHeldBy: a run that ends at the health gate for reboots in flight alone names them
// (Seen.HeldBy), and only those of its services; a run whose health fails for more names none.
func TestHeldBy(t *testing.T) {
	inFlight := func(m *machine, nodes ...string) {
		f := lock.Fleet{}
		for _, n := range nodes {
			f = f.With(n, "other")
		}
		data, _ := f.Encode()
		m.store.Put("holders", string(data))
	}
	tests := []struct {
		name  string
		setup func(m *machine)
		want  []string
	}{
		{"n2 of its service in flight, n9 elsewhere", func(m *machine) {
			m.health.Set(pipelinetest.Service("cassandra", []string{"max_failing=0"}, "n1", "n2"))
			inFlight(m, "n2", "n9")
		}, []string{"n2"}},
		{"n3 failing besides", func(m *machine) {
			svc := pipelinetest.Service("cassandra", []string{"max_failing=0"}, "n1", "n2", "n3")
			svc.Instances[2].Checks[0].Status = "critical"
			m.health.Set(svc)
			inFlight(m, "n2")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.store.SetTrigger("n1", "", true)
			tt.setup(m)
			res, err := m.run(t.Context())
			if !errors.Is(err, ending.ErrUnhealthy) {
				t.Fatalf("run ended with %v, want at the health gate", err)
			}
			if !slices.Equal(res.Seen.HeldBy, tt.want) {
				t.Fatalf("held by %v, want %v", res.Seen.HeldBy, tt.want)
			}
		})
	}
}
