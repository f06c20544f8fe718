// Package fleettest simulates a fleet for tests and benchmarks, on one machine and for real: a
// Consul server and a client agent per node on loopback, each node with its services and their
// script checks, its tasks, boot id and reboot command, and its rebootmgr daemon as a separate
// process. A node's "reboot" is recorded; the test then takes it down and boots it again.
package fleettest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Log collects a process's log and tells a test when a line containing some text appears.
type Log struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	waiters []waiter
}

type waiter struct {
	text string
	n    int
	ch   chan struct{}
}

// Write appends to the log.
func (w *Log) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := w.buf.Write(p)
	kept := w.waiters[:0]
	for _, wt := range w.waiters {
		if strings.Count(w.buf.String(), wt.text) >= wt.n {
			close(wt.ch)
		} else {
			kept = append(kept, wt)
		}
	}
	w.waiters = kept
	return n, nil
}

// String is the whole log.
func (w *Log) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// Seen returns a channel closed once the log contains text.
func (w *Log) Seen(text string) <-chan struct{} { return w.SeenN(text, 1) }

// SeenN returns a channel closed once the log contains text n times.
func (w *Log) SeenN(text string, n int) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if strings.Count(w.buf.String(), text) >= n {
		close(ch)
		return ch
	}
	w.waiters = append(w.waiters, waiter{text: text, n: n, ch: ch})
	return ch
}

// Count is how often text is in the log.
func (w *Log) Count(text string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.buf.String(), text)
}

// WaitSeen waits for ch (from Seen) and fails the test when it does not come in time.
func WaitSeen(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("never saw %s", what)
	}
}
