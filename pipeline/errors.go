package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// The reasons a run ends without rebooting. Each error a run returns wraps at most one of
// them; errors that wrap none are operational errors (Consul unreachable, bad configuration).
var (
	ErrStopped     = errors.New("stop flag set")
	ErrDisabled    = errors.New("node disabled")
	ErrUnhealthy   = errors.New("health checks failed")
	ErrLockHeld    = errors.New("reboot lock held by another node")
	ErrLockLost    = errors.New("lost the reboot lock")
	ErrTaskFailed  = errors.New("task failed")
	ErrNotRebooted = errors.New("node did not reboot")
	// ErrOutsideWindow: not now: outside a reboot window, on a blackout date, or within the
	// group's cooldown.
	ErrOutsideWindow = errors.New("outside the reboot window")
)

// notBeforeError is a "not now" gate that knows when it opens.
type notBeforeError struct {
	gateError
	until time.Time
}

// gateError is a run ending at a gate: its message says why in one line, and it wraps the
// gate's sentinel (and, where there is one, the error underneath).
type gateError struct {
	gate error
	msg  string
	err  error
}

func (e *gateError) Error() string   { return e.msg }
func (e *gateError) Unwrap() []error { return []error{e.gate, e.err} }

// errWaitInPlace marks a holder that may not reboot yet (its group's limit was lowered, or the
// Python rebootmgr holds the lock) and keeps its place while it waits.
var errWaitInPlace = errors.New("waiting in place")

func waitInPlace(format string, args ...any) error {
	return &gateError{gate: ErrLockHeld, msg: fmt.Sprintf(format, args...), err: errWaitInPlace}
}

func gateFail(gate error, format string, args ...any) error {
	return &gateError{gate: gate, msg: fmt.Sprintf(format, args...)}
}

func gateWrap(gate, err error, format string, args ...any) error {
	return &gateError{gate: gate, msg: fmt.Sprintf(format, args...) + ": " + err.Error(), err: err}
}

// Gate returns the gate a run ended at (one of the Err values above), or nil for a run that
// succeeded or failed for an operational reason.
func Gate(err error) error {
	for _, g := range []error{ErrStopped, ErrNotRebooted, ErrDisabled, ErrOutsideWindow, ErrLockLost, ErrLockHeld, ErrTaskFailed, ErrUnhealthy} {
		if errors.Is(err, g) {
			return g
		}
	}
	return nil
}
