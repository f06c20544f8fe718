package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/daemon"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// The gates' exit codes, for the tests: each the list's (see ending.List).
var (
	exitUnhealthy   = exitOf(ending.ErrUnhealthy)
	exitWindow      = exitOf(ending.ErrOutsideWindow)
	exitLockHeld    = exitOf(ending.ErrLockHeld)
	exitLockLost    = exitOf(ending.ErrLockLost)
	exitTaskFailed  = exitOf(ending.ErrTaskFailed)
	exitDisabled    = exitOf(ending.ErrDisabled)
	exitStopped     = exitOf(ending.ErrStopped)
	exitNotRebooted = exitOf(ending.ErrNotRebooted)
	exitAlerts      = exitOf(ending.ErrAlerts)
)

// exitOf is the exit code of a run that ends at the gate sentinel.
func exitOf(sentinel error) int {
	e, ok := ending.Of(sentinel)
	if !ok {
		panic(fmt.Sprintf("no ending %v", sentinel))
	}
	return e.Exit
}

// TestEveryGateIsKnown walks the endings a run can end at (ending.List): each has its own label
// and exit code (the Python rebootmgr's where it had one), the process exits with it, the
// daemon's status line names it, and the manual lists it; an operational error is none of them.
// Every gate of the list (gate.List) that holds a node back ends at one of them.
func TestEveryGateIsKnown(t *testing.T) {
	python := map[error]int{
		ending.ErrUnhealthy: 2, ending.ErrOutsideWindow: 6, ending.ErrLockHeld: 4, ending.ErrLockLost: 5,
		ending.ErrTaskFailed: 100, ending.ErrDisabled: 101, ending.ErrStopped: 102, ending.ErrNotRebooted: 103,
		// rebootmgr's own: the Python rebootmgr had no alerts gate (its 7 was a usage error).
		ending.ErrAlerts: 8,
	}
	var man strings.Builder
	if err := runMan(context.Background(), nil, testEnv(nil), &man, nil); err != nil {
		t.Fatal(err)
	}
	labels, exits := map[string]bool{}, map[int]bool{exitOK: true, exitError: true, exitUsage: true}
	for _, e := range ending.List() {
		t.Run(e.Label, func(t *testing.T) {
			if labels[e.Label] || exits[e.Exit] || e.Status == "" || e.Says == "" {
				t.Fatalf("%+v: label or exit code used twice, or no status or words for the manual", e)
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
			if entry := fmt.Sprintf(".B %d\n%s\n", e.Exit, roffEscape(e.Says)); !strings.Contains(man.String(), entry) {
				t.Fatalf("the manual does not list %q", entry)
			}
		})
	}
	if len(python) != len(ending.List()) {
		t.Fatalf("%d gates, %d exit codes known", len(ending.List()), len(python))
	}
	for _, g := range gate.List() {
		if _, known := ending.Of(g.Ends); g.Ends != nil && !known {
			t.Errorf("gate %s ends with %v, which no ending knows", g.Name, g.Ends)
		}
	}
	if got := exitCode(fmt.Errorf("consul unreachable")); got != exitError {
		t.Fatalf("an operational error exits %d", got)
	}
	if got := exitCode(errNotEnabled); got != exitDisabled {
		t.Fatalf("a daemon not enabled exits %d", got)
	}
}
