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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx, NewEvents(), func() {})
	}()
	defer func() { cancel(); <-done }()
	wait := func(want []string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case nodes := <-heard:
				if slices.Equal(nodes, want) {
					return
				}
			case <-deadline:
				t.Fatalf("Seen never heard %v", want)
			}
		}
	}
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx, NewEvents(), func() {})
	}()
	defer func() { cancel(); <-done }()
	wait := func(want []string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case services := <-heard:
				if slices.Equal(services, want) {
					return
				}
			case <-deadline:
				t.Fatalf("Runs never heard %v", want)
			}
		}
	}
	wait([]string{"galera"})
	a.RegisterService("cassandra", []string{"rebootmgr"}, "passing")
	wait([]string{"cassandra", "galera"})
}
