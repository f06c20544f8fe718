package ending

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/lock"
)

// Ending is a gate a run can end at, with all that is said of it: the exit code, the metrics'
// label, the daemon's status and the manual's words all come from here, so a gate added is
// known to each.
type Ending struct {
	Err error
	// Label names it in metrics (rebootmgr_blocked{gate}).
	Label string
	// Exit is the process's exit code (the Python rebootmgr's, where it had one).
	Exit int
	// Status starts the daemon's one-line status.
	Status string
	// Says is what the exit code means, as the manual page lists it.
	Says string
	// Operator says that the node waits for an operator: logged as an error.
	Operator bool
	// Resolve, for an ending that waits for an operator, is what resolves it for node of
	// group.
	Resolve func(node, group string) string
}

// List are the gates a run can end at, in the order an error that wraps several is judged by
// (the first it wraps names it).
func List() []Ending {
	return []Ending{
		{Err: ErrStopped, Label: "stop", Exit: 102, Status: "halted", Says: "stop flag set"},
		{Err: ErrNotRebooted, Label: "not_rebooted", Exit: 103, Status: "waiting for an operator", Operator: true,
			Says: "the lock says this node is rebooting, but the boot id did not change",
			Resolve: func(node, _ string) string {
				return "find why the reboot command did not reboot " + node + " (journalctl -u rebootmgr), then on " + node + ": rebootmgr unlock " + node + " --cancel-request --end-maintenance (without --cancel-request, the same reboot starts again at once)"
			}},
		{Err: ErrDisabled, Label: "disabled", Exit: 101, Status: "disabled",
			Says: "this node is disabled: its disabled mark in Consul, or, for reboot without --force, its daemon not enabled (REBOOTMGR_ENABLED=false)"},
		{Err: ErrOutsideWindow, Label: "not_now", Exit: 6, Status: "not now",
			Says: "not now: outside the reboot window, a blackout date, the group's cooldown, or the node's min reboot interval"},
		{Err: ErrLockLost, Label: "lock_lost", Exit: 5, Status: "lost the lock", Operator: true, Says: "lost the lock while preparing",
			Resolve: func(node, group string) string {
				return "see who released it (rebootmgr history" + GroupFlag(group) + "); the next run of " + node + " starts over from the gates"
			}},
		{Err: ErrLockHeld, Label: "lock_held", Exit: 4, Status: "waiting", Says: "another node holds the reboot lock"},
		{Err: ErrTaskFailed, Label: "task_failed", Exit: 100, Status: "task failed", Operator: true, Says: "a task failed or timed out",
			Resolve: func(node, _ string) string { return ResolveDisabledByTask(node) }},
		{Err: ErrUnhealthy, Label: "health", Exit: 2, Status: "waiting for health", Says: "health checks failed"},
		{Err: ErrAlerts, Label: "alerts", Exit: 8, Status: "held back by alerts",
			Says: "an alert the alerts filter chooses fires, or the alert source cannot be read"},
	}
}

// Of is the gate err ended at; false for a run that succeeded or failed for an operational
// reason (Consul unreachable, bad configuration).
func Of(err error) (Ending, bool) {
	if err == nil {
		return Ending{}, false
	}
	for _, e := range List() {
		if errors.Is(err, e.Err) {
			return e, true
		}
	}
	return Ending{}, false
}

// Sentinel returns the gate a run ended at (one of the Err values above), or nil for a run
// that succeeded or failed for an operational reason.
func Sentinel(err error) error {
	e, _ := Of(err)
	return e.Err
}

// WaitsForOperator says whether a run that ended with err leaves its node waiting for an
// operator: an ending that says so, or a node a failed task disabled.
func WaitsForOperator(err error) bool {
	e, _ := Of(err)
	return e.Operator || errors.Is(err, ErrDisabledByTask)
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
	if errors.Is(err, ErrDisabledByTask) {
		return status + ResolveSep + ResolveDisabledByTask(node)
	}
	if e, ok := Of(err); ok && e.Resolve != nil {
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

// taskMark is in the disabled mark a failed task leaves, before the time and a closing
// parenthesis.
const taskMark = " (rebootmgr, "

// TaskMark is the disabled mark a task that failed at for reason leaves.
func TaskMark(reason string, at time.Time) string {
	return reason + taskMark + at.UTC().Format(time.RFC3339) + ")"
}

// Disabled is why node, whose disabled mark holds value, does not reboot: ErrDisabled, and
// ErrDisabledByTask as well for a mark a failed task left. Every check of the mark ends so, so
// that the gate and the last read before the reboot say the same.
func Disabled(node, value string) *Error {
	reason := clip.OneLine(value)
	if reason == "" {
		reason = "no reason given"
	}
	e := &Error{Gate: ErrDisabled, Msg: fmt.Sprintf("node %s is disabled: %s", node, reason)}
	if DisabledByTask(value) {
		e.Err = ErrDisabledByTask
	}
	return e
}

// DisabledByTask says whether a disabled mark's value is one rebootmgr wrote when a task
// failed (not an operator's).
func DisabledByTask(value string) bool {
	i := strings.LastIndex(value, taskMark)
	if i < 0 || !strings.HasSuffix(value, ")") {
		return false
	}
	_, err := time.Parse(time.RFC3339, value[i+len(taskMark):len(value)-1])
	return err == nil
}
