// Package ending is how a run of rebootmgr ends when it does not reboot: the sentinel of each
// gate, the error that carries it, and what is said of each (the exit code, the metrics' label,
// the daemon's status, what resolves it). It sits below the rules of a place and the pipeline,
// which both end runs with it.
package ending

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
	// ErrOutsideWindow: not now: outside a reboot window, on a blackout date, within the
	// group's cooldown, or within the node's min reboot interval.
	ErrOutsideWindow = errors.New("outside the reboot window")
	// ErrSignalNotCleared: what asks for a reboot is what asked for the node's last one, right
	// after it. It comes with ErrOutsideWindow: the node waits.
	ErrSignalNotCleared = errors.New("the reboot signal did not clear after the reboot")
	// ErrAlerts: an alert the operator's filter chooses fires, or the alert source cannot be
	// read: no node takes a place.
	ErrAlerts = errors.New("alerts firing")
	// ErrDisabledByTask marks a node that a failed task disabled (it comes with ErrDisabled):
	// it waits for an operator.
	ErrDisabledByTask = errors.New("disabled by a failed task")
)

// Error is a run ending at a gate: its message says why in one line, and it wraps the gate's
// sentinel (and, where there is one, the error underneath).
type Error struct {
	// Gate is the gate's sentinel (ErrStopped, ...).
	Gate error
	Msg  string
	// Err is the error underneath (nil for none).
	Err error
	// Name is the gate's own name where it shares its ending with others ("" where the
	// ending's names it): see GateName.
	Name string
	// Until is when a "not now" gate opens (zero: not known).
	Until time.Time
}

func (e *Error) Error() string    { return e.Msg }
func (e *Error) Unwrap() []error  { return []error{e.Gate, e.Err} }
func (e *Error) gateName() string { return e.Name }

// Fail is a run ending at gate, saying why.
func Fail(gate error, format string, args ...any) error {
	return &Error{Gate: gate, Msg: fmt.Sprintf(format, args...)}
}

// Wrap is a run ending at gate for err, saying why.
func Wrap(gate, err error, format string, args ...any) error {
	return &Error{Gate: gate, Msg: fmt.Sprintf(format, args...) + ": " + err.Error(), Err: err}
}

// Until is when err, a "not now" gate's, opens (zero when it does not say).
func Until(err error) time.Time {
	var e *Error
	if errors.As(err, &e) {
		return e.Until
	}
	return time.Time{}
}

// GateName names the gate a run ended at as the logs say it: the gate's own name where it
// shares its ending with others (the min reboot interval and the cooldown end as "not now",
// as the reboot window does), else its ending's; "" for a run that ended at no gate.
func GateName(err error) string {
	var g interface{ gateName() string }
	if errors.As(err, &g) && g.gateName() != "" {
		return g.gateName()
	}
	if e, ok := Of(err); ok {
		return e.Err.Error()
	}
	return ""
}
