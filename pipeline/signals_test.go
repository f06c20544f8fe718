package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// TestSentinelCommand: a reboot-required command asks only when it says so (exit 0), and only
// when no file and no key asks already; the reboot it asked for is recorded as its own.
func TestSentinelCommand(t *testing.T) {
	m := newMachine(t)
	cmd := &pipelinetest.Sentinel{Name: "! needs-restarting -r"}
	m.sentinels = []gate.Sentinel{cmd}
	for range 3 {
		if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.NothingToDo {
			t.Fatalf("the command says no: %v, %v", res, err)
		}
	}
	m.store.SetTrigger("n1", "", true)
	asked := cmd.Asks()
	m.config.DryRun = true
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cmd.Asks() != asked {
		t.Fatal("the command was asked although the key asked already")
	}
	m.config.DryRun = false
	m.store.SetTrigger("n1", "", false)
	cmd.Say(true)
	res, err := m.run(t.Context())
	if err != nil || res.Outcome != pipeline.RebootStarted || res.Seen.Required != "command ! needs-restarting -r" {
		t.Fatalf("the command says a reboot is required: %v (%q), %v", res, res.Seen.Required, err)
	}
	m.boot()
	cmd.Say(false)
	if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.Finished {
		t.Fatalf("after the boot: %v, %v", res, err)
	}
	l, _, _ := m.store.History(t.Context())
	if len(l.Entries) != 1 || l.Entries[0].TriggeredBy != "command ! needs-restarting -r" {
		t.Fatalf("history: %+v", l)
	}
}

// TestMinRebootInterval: a node asked again within --min-reboot-interval of the end of its
// last reboot waits ("not now", until the interval has passed), then reboots. A request the
// reboot did not clear (a file its boot wrote again, the same command still saying so) is told
// once, however often it is seen, and recorded in the history; a new request within the
// interval only waits.
func TestMinRebootInterval(t *testing.T) {
	const interval = time.Hour
	tests := []struct {
		name string
		// before sets up the request of the first reboot; during is the machine's boot; after
		// is the request seen after it (the fake clock at the end of the first reboot).
		before, during, after func(m *machine)
		interval              time.Duration
		notCleared            bool
		waits                 bool
	}{
		{
			name:     "a new key request",
			before:   func(m *machine) { m.store.SetTrigger("n1", "kernel", true) },
			after:    func(m *machine) { m.store.SetTrigger("n1", "kernel again", true) },
			interval: interval, waits: true,
		},
		{
			name:   "a file the boot wrote again",
			before: func(m *machine) { m.touch(m.clock.Now().Add(-time.Minute)) },
			// After the reboot started: the end of the reboot keeps it as a new request.
			during:   func(m *machine) { m.touch(m.clock.Now().Add(time.Second)) },
			interval: interval, waits: true, notCleared: true,
		},
		{
			name:     "a file written after the reboot finished",
			before:   func(m *machine) { m.touch(m.clock.Now().Add(-time.Minute)) },
			after:    func(m *machine) { m.touch(m.clock.Now().Add(time.Second)) },
			interval: interval, waits: true,
		},
		{
			name:     "the same command still saying so",
			before:   func(m *machine) { m.command.Say(true) },
			interval: interval, waits: true, notCleared: true,
		},
		{
			name:     "the interval off",
			before:   func(m *machine) { m.command.Say(true) },
			interval: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.config.MinRebootInterval = tt.interval
			var told []string
			m.notifier = func(kind string) { told = append(told, kind) }
			tt.before(m)
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted {
				t.Fatalf("the first reboot: %v, %v", res, err)
			}
			if tt.during != nil {
				tt.during(m)
			}
			m.boot()
			m.clock.Set(m.clock.Now().Add(3 * time.Minute)) // a boot takes a while
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.Finished {
				t.Fatalf("after the boot: %v, %v", res, err)
			}
			end := m.clock.Now()
			if tt.after != nil {
				tt.after(m)
			}
			m.clock.Set(end.Add(10 * time.Minute))
			res, err := m.run(t.Context())
			if !tt.waits {
				if err != nil || res.Outcome != pipeline.RebootStarted {
					t.Fatalf("asked again: %v, %v; want a reboot", res, err)
				}
				return
			}
			if !errors.Is(err, ending.ErrOutsideWindow) || m.reboot.Count() != 1 {
				t.Fatalf("asked again 10 minutes after: %v, %d reboots; want not now", err, m.reboot.Count())
			}
			if e, _ := ending.Of(err); e.Exit != 6 {
				t.Fatalf("exit %d, want 6", e.Exit)
			}
			until := end.Add(interval)
			if !res.Recheck.Equal(until) || !strings.Contains(err.Error(), until.UTC().Format(time.RFC3339)) {
				t.Fatalf("%q, recheck at %s; want it to say until %s", err, res.Recheck, until)
			}
			if errors.Is(err, ending.ErrSignalNotCleared) != tt.notCleared {
				t.Fatalf("%q: did not clear: %v, want %v", err, !tt.notCleared, tt.notCleared)
			}
			if h, holds := m.lock().Holder("n1"); holds {
				t.Fatalf("holds a place while it waits: %+v", h)
			}
			for range 3 {
				m.clock.Set(m.clock.Now().Add(10 * time.Minute))
				if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrOutsideWindow) {
					t.Fatalf("asked again within the interval: %v", err)
				}
			}
			wantTold := 0
			if tt.notCleared {
				wantTold = 1
			}
			if got := countOf(told, pipeline.NotifySignalNotCleared); got != wantTold {
				t.Fatalf("told %v; want %d of %q", told, wantTold, pipeline.NotifySignalNotCleared)
			}
			l, _, _ := m.store.History(t.Context())
			if got := countOutcome(l, history.SignalNotCleared); got != wantTold {
				t.Fatalf("history %+v: %d entries saying it did not clear, want %d", l, got, wantTold)
			}
			m.clock.Set(until)
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted || m.reboot.Count() != 2 {
				t.Fatalf("asked again once the interval passed: %v, %v", res, err)
			}
		})
	}
}

// TestMinRebootIntervalDryRun: a dry run says that the signal did not clear, and neither tells
// nor records it.
func TestMinRebootIntervalDryRun(t *testing.T) {
	m := newMachine(t)
	m.config.MinRebootInterval = time.Hour
	var told []string
	m.notifier = func(kind string) { told = append(told, kind) }
	m.command.Say(true)
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.boot()
	if _, err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.config.DryRun = true
	if _, err := m.run(t.Context()); !errors.Is(err, ending.ErrSignalNotCleared) {
		t.Fatalf("dry run: %v", err)
	}
	l, _, _ := m.store.History(t.Context())
	if slices.Contains(told, pipeline.NotifySignalNotCleared) || countOutcome(l, history.SignalNotCleared) != 0 {
		t.Fatalf("a dry run told %v or recorded %+v", told, l)
	}
}

// TestIntervalGate: the gate alone, as check judges it: only this node's finished reboots count.
func TestIntervalGate(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := history.Log{Entries: []history.Entry{
		{Node: "n2", End: now.Add(-time.Minute), Outcome: history.Finished},
		{Node: "n1", End: now.Add(-3 * time.Hour), Outcome: history.Finished, TriggeredBy: "command c"},
		{Node: "n1", End: now.Add(-time.Minute), Outcome: history.TaskFailed},
	}}
	for _, tt := range []struct {
		name     string
		interval time.Duration
		req      gate.Request
		err      error
	}{
		{"another node's reboot", 2 * time.Hour, gate.Request{Why: "key reboot_required"}, nil},
		{"this node's, long ago", 2 * time.Hour, gate.Request{Why: "key reboot_required"}, nil},
		{"this node's, within", 4 * time.Hour, gate.Request{Why: "key reboot_required"}, ending.ErrOutsideWindow},
		{"the same command", 4 * time.Hour, gate.Request{Why: "command c", Command: true}, ending.ErrSignalNotCleared},
		{"another command", 4 * time.Hour, gate.Request{Why: "command d", Command: true}, ending.ErrOutsideWindow},
		{"a file from before", 4 * time.Hour, gate.Request{Why: "file f", Written: now.Add(-4 * time.Hour)}, ending.ErrSignalNotCleared},
		{"off", 0, gate.Request{Why: "command c", Command: true}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := gate.WithinInterval(l, "n1", tt.interval, now, tt.req)
			if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("%v, want %v", err, tt.err)
			}
			if tt.err == ending.ErrOutsideWindow && errors.Is(err, ending.ErrSignalNotCleared) {
				t.Fatalf("%v: a new request taken as one that did not clear", err)
			}
		})
	}
}

// touch writes the machine's reboot-required file, last written at t.
func (m *machine) touch(at time.Time) {
	m.t.Helper()
	if err := os.WriteFile(m.triggerFile(), nil, 0o644); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Chtimes(m.triggerFile(), at, at); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) triggerFile() string { return filepath.Join(m.dir, "reboot-required") }

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func countOutcome(l history.Log, outcome string) int {
	n := 0
	for _, e := range l.Entries {
		if e.Outcome == outcome {
			n++
		}
	}
	return n
}
