package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
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
	// name is the gate's own name where it shares its ending with others ("" where the
	// ending's names it): see GateName.
	name string
}

func (e *gateError) Error() string    { return e.msg }
func (e *gateError) Unwrap() []error  { return []error{e.gate, e.err} }
func (e *gateError) gateName() string { return e.name }

// GateName names the gate a run ended at as the logs say it: the gate's own name where it
// shares its ending with others (the min reboot interval and the cooldown end as "not now",
// as the reboot window does), else its ending's; "" for a run that ended at no gate.
func GateName(err error) string {
	var g interface{ gateName() string }
	if errors.As(err, &g) && g.gateName() != "" {
		return g.gateName()
	}
	if e, ok := EndingOf(err); ok {
		return e.Err.Error()
	}
	return ""
}

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

// Ending is a gate a run can end at, with all that is said of it: the exit code, the metrics'
// label and the daemon's status all come from here, so a gate added is known to each.
type Ending struct {
	Err error
	// Label names it in metrics (rebootmgr_blocked{gate}).
	Label string
	// Exit is the process's exit code (the Python rebootmgr's, where it had one).
	Exit int
	// Status starts the daemon's one-line status.
	Status string
	// Operator says that the node waits for an operator: logged as an error.
	Operator bool
	// Resolve, for an ending that waits for an operator, is what resolves it for node of
	// group.
	Resolve func(node, group string) string
}

// errDisabledByTask marks a node that a failed task disabled: it waits for an operator.
var errDisabledByTask = errors.New("disabled by a failed task")

// WaitsForOperator says whether a run that ended with err leaves its node waiting for an
// operator: an ending that says so, or a node a failed task disabled.
func WaitsForOperator(err error) bool {
	e, _ := EndingOf(err)
	return e.Operator || errors.Is(err, errDisabledByTask)
}

// ResolveDisabledByTask is what resolves a node a failed task disabled.
func ResolveDisabledByTask(node string) string {
	return "fix what the task found (journalctl -u rebootmgr), then: rebootmgr enable " + node
}

// ResolveOverdue is what resolves a holder of group past its deadline: its miss is reported
// once, and it finishes under the stop; one gone for good is unlocked first.
func ResolveOverdue(node, group string) string {
	return fmt.Sprintf("look at %s; back, or coming back: it finishes its reboot, then rebootmgr resume%s; gone for good: rebootmgr unlock %s --force, then rebootmgr resume%s",
		node, GroupFlag(group), node, GroupFlag(group))
}

// ResolveSep joins a status that waits for an operator to what resolves it.
const ResolveSep = "; to resolve: "

// Resolution is the status line of a node of group whose run ended with err, with what resolves
// it when only an operator can.
func Resolution(status string, err error, node, group string) string {
	if errors.Is(err, errDisabledByTask) {
		return status + ResolveSep + ResolveDisabledByTask(node)
	}
	if e, ok := EndingOf(err); ok && e.Resolve != nil {
		return status + ResolveSep + e.Resolve(node, group)
	}
	return status
}

// GroupFlag is " --group GROUP" for a group other than the default one, as commands take it.
func GroupFlag(group string) string {
	if group == "" || group == lock.DefaultGroup {
		return ""
	}
	return " --group " + group
}

// Endings are the gates a run can end at, in the order an error that wraps several is judged
// by (the first it wraps names it).
func Endings() []Ending {
	return []Ending{
		{Err: ErrStopped, Label: "stop", Exit: 102, Status: "halted"},
		{Err: ErrNotRebooted, Label: "not_rebooted", Exit: 103, Status: "waiting for an operator", Operator: true,
			Resolve: func(node, _ string) string {
				return "find why the reboot command did not reboot " + node + " (journalctl -u rebootmgr), then: rebootmgr unlock " + node
			}},
		{Err: ErrDisabled, Label: "disabled", Exit: 101, Status: "disabled"},
		{Err: ErrOutsideWindow, Label: "not_now", Exit: 3, Status: "not now"},
		{Err: ErrLockLost, Label: "lock_lost", Exit: 5, Status: "lost the lock", Operator: true,
			Resolve: func(node, group string) string {
				return "see who released it (rebootmgr history" + GroupFlag(group) + "); the next run of " + node + " starts over from the gates"
			}},
		{Err: ErrLockHeld, Label: "lock_held", Exit: 4, Status: "waiting"},
		{Err: ErrTaskFailed, Label: "task_failed", Exit: 100, Status: "task failed", Operator: true,
			Resolve: func(node, _ string) string {
				return "fix what the task found (journalctl -u rebootmgr), then: rebootmgr enable " + node
			}},
		{Err: ErrUnhealthy, Label: "health", Exit: 2, Status: "waiting for health"},
	}
}

// EndingOf is the gate err ended at; false for a run that succeeded or failed for an
// operational reason (Consul unreachable, bad configuration).
func EndingOf(err error) (Ending, bool) {
	if err == nil {
		return Ending{}, false
	}
	for _, e := range Endings() {
		if errors.Is(err, e.Err) {
			return e, true
		}
	}
	return Ending{}, false
}

// Gate returns the gate a run ended at (one of the Err values above), or nil for a run that
// succeeded or failed for an operational reason.
func Gate(err error) error {
	e, _ := EndingOf(err)
	return e.Err
}

// errWorking marks a node that could take a place and works towards it: it waits for the
// group's cooldown, or for its health to stay green. It keeps its turn in the group's queue
// (see Pipeline.keepTurn) and looks again within lock.KeepEvery.
var errWorking = errors.New("working towards its place")

// working marks err (a gate's) as the wait of a node working towards its place.
func working(err error) error {
	var nb *notBeforeError
	if errors.As(err, &nb) {
		out := *nb
		out.gateError.err = errors.Join(out.gateError.err, errWorking)
		return &out
	}
	return err
}
