package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/daemon"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// TestEveryGateIsKnown walks the gates a run can end at: each has its own label and exit code
// (the Python rebootmgr's where it had one), the process exits with it, and the daemon's status
// line names it; an operational error is none of them.
func TestEveryGateIsKnown(t *testing.T) {
	python := map[error]int{
		ending.ErrUnhealthy: exitUnhealthy, ending.ErrOutsideWindow: exitWindow, ending.ErrLockHeld: exitLockHeld,
		ending.ErrLockLost: exitLockLost, ending.ErrTaskFailed: exitTaskFailed, ending.ErrDisabled: exitDisabled,
		ending.ErrStopped: exitStopped, ending.ErrNotRebooted: exitNotRebooted,
	}
	labels, exits := map[string]bool{}, map[int]bool{exitOK: true, exitError: true, exitUsage: true}
	for _, e := range ending.List() {
		t.Run(e.Label, func(t *testing.T) {
			if labels[e.Label] || exits[e.Exit] || e.Status == "" {
				t.Fatalf("%+v: label or exit code used twice, or no status", e)
			}
			labels[e.Label], exits[e.Exit] = true, true
			if want, ok := python[e.Err]; !ok || want != e.Exit {
				t.Fatalf("%+v: exit code %d, want %d", e, e.Exit, want)
			}
			err := fmt.Errorf("a run: %w", e.Err)
			if got := exitCode(err); got != e.Exit {
				t.Fatalf("exit code %d, want %d", got, e.Exit)
			}
			if st := daemon.Status(pipeline.Result{}, err); !strings.HasPrefix(st, e.Status+": ") {
				t.Fatalf("status %q does not start with %q", st, e.Status)
			}
		})
	}
	if len(python) != len(ending.List()) {
		t.Fatalf("%d gates, %d exit codes known", len(ending.List()), len(python))
	}
	if got := exitCode(fmt.Errorf("consul unreachable")); got != exitError {
		t.Fatalf("an operational error exits %d", got)
	}
}
