package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestRequestTakenWhenTheRebootStarts: the reboot takes the node's request as it starts, and
// its end deletes only what it took. A request written after that, even with the very value
// it had (Consul keeps a key's index then), is a new one and survives; one withdrawn stays
// withdrawn.
func TestRequestTakenWhenTheRebootStarts(t *testing.T) {
	tests := []struct {
		name string
		// rebooting runs while the node is down; finishing during its post-boot tasks.
		rebooting, finishing func(m *machine)
		// kept is the request after the reboot finished ("": none).
		kept string
	}{
		{name: "nothing written after", kept: ""},
		{name: "the same value while rebooting", rebooting: func(m *machine) { m.store.SetTrigger("n1", "kernel", true) }, kept: "kernel"},
		{name: "the same value while finishing", finishing: func(m *machine) { m.store.SetTrigger("n1", "kernel", true) }, kept: "kernel"},
		{name: "another value while rebooting", rebooting: func(m *machine) { m.store.SetTrigger("n1", "kernel 6.2", true) }, kept: "kernel 6.2"},
		{name: "withdrawn while rebooting", rebooting: func(m *machine) { m.store.SetTrigger("n1", "", false) }, kept: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.store.SetTrigger("n1", "kernel", true)
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted {
				t.Fatalf("first run: %v, %v", res, err)
			}
			f := trigger(t, m)
			h, _ := m.lock().Holder("n1")
			if want := "kernel (taken by the reboot of n1 at 2026-11-26T12:00:00Z)"; f.Value != want || h.TriggerIndex != f.Index {
				t.Fatalf("request after the reboot started: %+v, lock's index %d; want %q at that index", f, h.TriggerIndex, want)
			}
			if tt.rebooting != nil {
				tt.rebooting(m)
			}
			m.tasks.During = func(_ context.Context, phase string) error {
				if phase == pipeline.PostBoot && tt.finishing != nil {
					tt.finishing(m)
				}
				return nil
			}
			m.boot()
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.Finished {
				t.Fatalf("after the boot: %v, %v", res, err)
			}
			if f := trigger(t, m); f.Set != (tt.kept != "") || f.Value != tt.kept {
				t.Fatalf("request after the reboot: %+v, want %q", f, tt.kept)
			}
			if tt.kept == "" {
				return
			}
			if res, err := m.run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted || m.reboot.Count() != 2 {
				t.Fatalf("the request kept: %v, %v, %d reboots; want a second reboot", res, err, m.reboot.Count())
			}
		})
	}
}

// TestRequestNotLostWithoutTheReboot: a take refused stops the run before the phase change,
// the request as it was; a reboot that does not happen after the take gives the request back,
// and one whose command failed leaves it asking, taken (its entry still rebooting).
func TestRequestNotLostWithoutTheReboot(t *testing.T) {
	const taken = "kernel (taken by the reboot of n1 at 2026-11-26T12:00:00Z)"
	tests := []struct {
		name  string
		setup func(m *machine)
		// says is in the run's error; value is the request after it, as it was when same.
		says  string
		value string
		same  bool
		phase lock.Phase
	}{
		{"the take refused", func(m *machine) { m.store.FailTriggerWrites(true) }, "take the reboot request", "kernel", true, ""},
		{"stopped after the take", func(m *machine) {
			m.notifier = func(kind string) {
				if kind == pipeline.NotifyRebootStarted {
					m.store.SetStop("set while announcing", true)
				}
			}
		}, "set while announcing", "kernel", false, lock.Preparing},
		{"the reboot command failed", func(m *machine) { m.reboot.Err = errors.New("systemctl: no") }, "systemctl: no", taken, false, lock.Rebooting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.store.SetTrigger("n1", "kernel", true)
			before := trigger(t, m)
			tt.setup(m)
			if res, err := m.run(t.Context()); err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("run: %v, %v; want an error saying %q", res, err, tt.says)
			}
			f := trigger(t, m)
			if f.Value != tt.value || (f.Index == before.Index) != tt.same {
				t.Fatalf("request after the run: %+v, was %+v; want %q", f, before, tt.value)
			}
			h, _ := m.lock().Holder("n1")
			if h.Phase != tt.phase || (h.Phase != lock.Rebooting && h.TriggerIndex != 0) {
				t.Fatalf("lock after the run: %+v, want phase %q", h, tt.phase)
			}
		})
	}
}

func TestTakenValue(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	long := strings.Repeat("é", clip.Max)
	tests := []struct {
		name, value, want string
	}{
		{"empty", "", " (taken by the reboot of n1 at 2026-11-26T12:00:00Z)"},
		{"a reason", "kernel 6.1 (by alice)", "kernel 6.1 (by alice) (taken by the reboot of n1 at 2026-11-26T12:00:00Z)"},
		{"taken before", "kernel (taken by the reboot of n1 at 2026-11-25T08:00:00Z)", "kernel (taken by the reboot of n1 at 2026-11-26T12:00:00Z)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pipeline.TakenValue(tt.value, "n1", at); got != tt.want {
				t.Fatalf("TakenValue(%q) = %q, want %q", tt.value, got, tt.want)
			}
			if got, ok := pipeline.Untaken(tt.want); !ok || got+strings.TrimPrefix(tt.want, got) != tt.want || strings.Contains(got, "taken by") {
				t.Fatalf("Untaken(%q) = %q, %v", tt.want, got, ok)
			}
		})
	}
	got := pipeline.TakenValue(long, "n1", at)
	if len(got) > clip.Max || !strings.HasSuffix(got, clip.Marker+" (taken by the reboot of n1 at 2026-11-26T12:00:00Z)") {
		t.Fatalf("a long value taken: %d bytes, ends %q", len(got), got[len(got)-80:])
	}
	if again := pipeline.TakenValue(got, "n1", at); again != got {
		t.Fatalf("a long value taken twice grows: %d bytes, was %d", len(again), len(got))
	}
	if v, ok := pipeline.Untaken("kernel (by alice)"); ok || v != "kernel (by alice)" {
		t.Fatalf("Untaken of a value never taken: %q, %v", v, ok)
	}
}

func trigger(t *testing.T, m *machine) place.Flag {
	t.Helper()
	f, err := m.store.Trigger(t.Context(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	return f
}
