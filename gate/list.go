// Package gate is the list of the gates a node's reboot must pass, in the order the pipeline
// meets them, each a pure function of the node's State. The pipeline stops at the first that
// fails; check and status judge them all, on one State, and show each with its evidence. The
// rules of a place in the lock that the lock gate judges are package place's; what a run that
// ends at a gate says (exit code, metric label, status) is package ending's.
package gate

import (
	"errors"
	"strings"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
)

// The gates' names, as logs, check and status say them.
const (
	Stop      = "stop"
	Rebooted  = "rebooted"
	Trigger   = "trigger"
	Disabled  = "disabled"
	Window    = "window"
	Interval  = "interval"
	Health    = "health"
	Alerts    = "alerts"
	Tasks     = "tasks"
	Lock      = "lock"
	Cooldown  = "cooldown"
	StayGreen = "stay green"
)

// Gate is one gate.
type Gate struct {
	Name string
	// Ends is the ending of a run held back here (see package ending); nil for a gate that
	// holds nobody back (it says, or ends as an operational error).
	Ends error
	// Finishing: the gate is judged for a node whose reboot happened too, which finishes it
	// (see Finishing); the others concern a reboot yet to start.
	Finishing bool
	// Judge judges the gate on s.
	Judge func(s *State) Verdict
}

// List is every gate, in the order the pipeline meets them: the stop flags (and a holder past
// its deadline), whether a reboot under way happened, what asks for a reboot, the node's own
// gates (disabled, window, min reboot interval, health), the alerts that fire, its tasks, its place in the lock (room,
// turn in the queue, claims of room, alone under auto, zones), then the waits on the way to a
// place, which only a node that could take one waits for, keeping its turn (cooldown, stay
// green).
func List() []Gate {
	return []Gate{
		{Name: Stop, Ends: ending.ErrStopped, Finishing: true, Judge: judgeStop},
		{Name: Rebooted, Ends: ending.ErrNotRebooted, Finishing: true, Judge: judgeRebooted},
		{Name: Trigger, Judge: judgeTrigger},
		{Name: Disabled, Ends: ending.ErrDisabled, Judge: judgeDisabled},
		{Name: Window, Ends: ending.ErrOutsideWindow, Judge: judgeWindow},
		{Name: Interval, Ends: ending.ErrOutsideWindow, Judge: judgeInterval},
		{Name: Health, Ends: ending.ErrUnhealthy, Finishing: true, Judge: judgeHealth},
		{Name: Alerts, Ends: ending.ErrAlerts, Judge: judgeAlerts},
		{Name: Tasks, Judge: judgeTasks},
		{Name: Lock, Ends: ending.ErrLockHeld, Judge: judgeLock},
		{Name: Cooldown, Ends: ending.ErrOutsideWindow, Judge: judgeCooldown},
		{Name: StayGreen, Ends: ending.ErrUnhealthy, Judge: judgeStayGreen},
	}
}

// Named is the gate called name.
func Named(name string) Gate {
	for _, g := range List() {
		if g.Name == name {
			return g
		}
	}
	panic("gate: no gate " + name)
}

// Verdict is one gate's answer, with its evidence.
type Verdict struct {
	Gate     string
	Pass     bool
	Evidence []string
	// Err is the error a run ends with at this gate (nil when it passes).
	Err error
	// Reason says why in a few words, as status shows it ("" where Err's message does).
	Reason string
	// Skipped: the gate does not apply to the node as it is (the min reboot interval, the
	// cooldown and stay green to a node that holds a place already, whether a reboot happened
	// to one that holds none): it holds nothing back, and is not shown.
	Skipped bool
}

// Judged is g's verdict on s.
func (g Gate) Judged(s *State) Verdict {
	v := g.Judge(s)
	v.Gate = g.Name
	return v
}

// All are the verdicts of every gate that applies to s, in order, without stopping at the
// first that fails: for a node whose reboot happened, those that finish it (see Finishing).
func All(s *State) []Verdict {
	finishing := Finishing(s)
	var out []Verdict
	for _, g := range List() {
		if finishing && !g.Finishing {
			continue
		}
		if v := g.Judged(s); !v.Skipped {
			out = append(out, v)
		}
	}
	return out
}

// First is the first verdict of vs that fails (nil when none does): the gate the pipeline
// stops at.
func First(vs []Verdict) *Verdict {
	for i := range vs {
		if !vs[i].Pass {
			return &vs[i]
		}
	}
	return nil
}

// Finishing says whether the node holds a place whose reboot happened (phase rebooting or
// finishing): it finishes that reboot, under a stop flag too, and only the gates that finish it
// apply. A FleetLock host's place of its name is not its own: the host's steady-state finishes
// it.
func Finishing(s *State) bool {
	v, err := s.View.Get()
	if err != nil {
		return false
	}
	h, holds := v.Lock.Holder(s.Node)
	return holds && !h.FleetLock() && h.Phase != lock.Preparing
}

func pass(evidence ...string) Verdict { return Verdict{Pass: true, Evidence: evidence} }

func fail(err error, evidence ...string) Verdict {
	if len(evidence) == 0 {
		evidence = []string{err.Error()}
	}
	return Verdict{Err: err, Evidence: evidence}
}

// failShort is fail, with a reason shorter than err's message for status.
func failShort(err error, reason string, evidence ...string) Verdict {
	v := fail(err, evidence...)
	v.Reason = reason
	return v
}

// Why is what v says of why it holds a node back, as status shows it.
func (v Verdict) Why() string {
	if v.Reason != "" {
		return v.Reason
	}
	return strings.TrimPrefix(v.Err.Error(), "cannot take the reboot lock: ")
}

func skip() Verdict { return Verdict{Pass: true, Skipped: true} }

// failed is the verdict of a part that could not be read.
func failed(err error) Verdict { return fail(err) }

// Ends says whether err ends a run at one of the gates of the list.
func Ends(err error) bool {
	for _, g := range List() {
		if g.Ends != nil && errors.Is(err, g.Ends) {
			return true
		}
	}
	return false
}
