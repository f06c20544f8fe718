package watch

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// syncBuffer is a log that a test reads while a watch writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchRecoversWhenConsulAnswersAgain: after an outage, a watch says it recovered as soon as
// Consul answers again, with an event (anything may have changed while it was blind), not at the
// next change of its key or the end of a blocking query's wait.
func TestWatchRecoversWhenConsulAnswersAgain(t *testing.T) {
	a := consultest.Server(t, "n1")
	if _, err := a.Client.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	events := NewEvents()
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	retry := func() backoff.BackOff { return backoff.NewConstantBackOff(100 * time.Millisecond) }
	go func() {
		defer close(done)
		_ = KeySource{KV: a.Client.KV(), Key: "k", Source: SourceStop, Logger: slog.New(slog.NewTextHandler(log, nil)), Retry: retry}.Run(ctx, events, func() { close(ready) })
	}()
	defer func() { cancel(); <-done }()
	<-ready
	seen := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(log.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("the watch never logged %q:\n%s", what, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	a.Kill()
	seen("watch failing")
	events.Take()
	a.Start()
	seen("watch recovered")
	select {
	case <-events.Wake():
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the recovery")
	}
}
