package watch

import (
	"sync"
	"time"
)

// Source says what an event comes from.
type Source string

// The sources of events.
const (
	SourceStart    Source = "start"
	SourceStop     Source = "stop-key"
	SourceTrigger  Source = "reboot-required-key"
	SourceDisabled Source = "disabled-key"
	// SourceLock: the group's lock record or its queue changed.
	SourceLock Source = "lock"
	// SourceLimit: the group's limit changed.
	SourceLimit Source = "limit"
	// SourceTurn: a place in the group's lock opened for this node (see lock.Queue).
	SourceTurn Source = "turn"
	// SourceLook: this node, waiting in the group's queue, is told to look at the lock (a
	// holder's deadline changed).
	SourceLook Source = "look"
	// SourceHolders: the fleet's record of every group's holders changed.
	SourceHolders Source = "holders"
	// SourcePython: a key of the Python rebootmgr's lock changed (its session locks, its
	// reboot_in_progress markers).
	SourcePython Source = "python-lock"
	// SourceClaims: the fleet's claims of room changed (see lock.Claims).
	SourceClaims   Source = "claims"
	SourceHealth   Source = "health"
	SourceFile     Source = "reboot-required-file"
	SourceTick     Source = "tick"
	SourceRetry    Source = "retry"
	SourceDeadline Source = "deadline"
)

// Event means "look again": something this node's reboot depends on may have changed.
type Event struct {
	Source Source
	// At is when the event was seen.
	At time.Time
	// Subject names what changed: a key, a service, a file.
	Subject string
	// Exists is the state of a key or file as it is now.
	Exists bool
}

// Events coalesces events: any number sent between two evaluations wake one evaluation.
type Events struct {
	mu      sync.Mutex
	pending []Event
	wake    chan struct{}
	// taps hear every event sent, beside the evaluation (see Tap).
	taps []*Tap
	// reading says, of each watch that feeds these events, whether it reads what it watches now
	// (see Reading): one that fails, or has not started, would not send what changed.
	reading map[string]bool
}

// NewEvents returns an empty queue.
func NewEvents() *Events {
	return &Events{wake: make(chan struct{}, 1)}
}

// MaxPending bounds the events kept for one evaluation; more only wake the same evaluation (so
// a batch of MaxPending may not name every source that sent one).
const MaxPending = 64

// Send queues an event and wakes the evaluation; it never blocks.
func (e *Events) Send(ev Event) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	e.mu.Lock()
	if len(e.pending) < MaxPending {
		e.pending = append(e.pending, ev)
	}
	for _, t := range e.taps {
		t.hear(ev.Source)
	}
	e.mu.Unlock()
	signal(e.wake)
}

// signal makes wake ready, without blocking.
func signal(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// Wake is ready when events are pending.
func (e *Events) Wake() <-chan struct{} { return e.wake }

// Take returns and clears the pending events.
func (e *Events) Take() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.pending
	e.pending = nil
	return out
}
