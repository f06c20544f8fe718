package watch

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// TestHealthSourceSeesNothingWhileItCannotRead: the health watch tells Seen the nodes running a
// service on every read, and no nodes when a read fails: whatever it heard before may be out
// of date by the time it reads again (a node left, was forgotten and came back meanwhile).
func TestHealthSourceSeesNothingWhileItCannotRead(t *testing.T) {
	a := consultest.Dev(t, "n1")
	a.RegisterService("galera", []string{"rebootmgr"}, "passing")
	heard := make(chan []string, 100)
	src := HealthSource{
		Client: a.Client, Node: "n1", Tag: "rebootmgr", Logger: slog.New(slog.DiscardHandler),
		Retry: DefaultRetry,
		Seen: func(_ context.Context, service string, nodes []string) {
			if service == "galera" {
				heard <- nodes
			}
		},
	}
	wait := runHealthSource(t, src, heard, "Seen")
	wait([]string{"n1"})
	a.Kill()
	wait(nil)
}

// TestHealthSourceTellsWhatItRuns: the health watch tells Runs the tagged services of its node
// at every read of their set, a service tagged later among them.
func TestHealthSourceTellsWhatItRuns(t *testing.T) {
	a := consultest.Dev(t, "n1")
	a.RegisterService("galera", []string{"rebootmgr"}, "passing")
	a.RegisterService("untagged", nil, "passing")
	heard := make(chan []string, 100)
	src := HealthSource{
		Client: a.Client, Node: "n1", Tag: "rebootmgr", Logger: slog.New(slog.DiscardHandler),
		Runs: func(_ context.Context, services []string) { heard <- services },
	}
	wait := runHealthSource(t, src, heard, "Runs")
	wait([]string{"galera"})
	a.RegisterService("cassandra", []string{"rebootmgr"}, "passing")
	wait([]string{"cassandra", "galera"})
}

// runHealthSource runs src until the test ends, and gives a wait for heard to carry want (what
// names the callback that hears, for the failure).
func runHealthSource(t *testing.T, src HealthSource, heard <-chan []string, what string) func(want []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx, NewEvents(), func() {})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func(want []string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case got := <-heard:
				if slices.Equal(got, want) {
					return
				}
			case <-deadline:
				t.Fatalf("%s never heard %v", what, want)
			}
		}
	}
}
