package gate

import (
	"fmt"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/window"
)

// NotRebooted is the gate of a node whose holder entry h says it is rebooting: its boot id must
// have changed since the reboot command ran (b.Ran: the command was noted as run on this boot;
// a command that never ran is no reboot that failed, and the pipeline starts over).
//
// Until NotRebootedAfter has passed since the command, the machine may be on its way down: the
// error says that the boot id has not changed yet, not that the reboot did not happen.
func NotRebooted(node string, h lock.Holder, b Boot, now time.Time) error {
	bootID := b.ID
	if h.Phase != lock.Rebooting || bootID != h.BootID || !b.Ran {
		return nil
	}
	if in := now.Sub(h.RebootStarted); in < NotRebootedAfter {
		return ending.Fail(ending.ErrNotRebooted, "the reboot command of %s ran at %s, %s ago, and the boot id %s has not changed yet: the machine may still be on its way down (a reboot that has not happened %s after its command did not happen)",
			node, h.RebootStarted.UTC().Format(time.RFC3339), in.Round(time.Second), bootID, NotRebootedAfter)
	}
	return ending.Fail(ending.ErrNotRebooted, "the reboot lock says %s is rebooting since %s, but %s (check the reboot command; the lock stays until an operator unlocks it)",
		node, h.RebootStarted.Format(time.RFC3339), didNotReboot(bootID))
}

// NotRebootedAfter is how long a reboot may take to take the machine down: a boot id unchanged
// for longer after the reboot command is a reboot that did not happen.
const NotRebootedAfter = 5 * time.Minute

// didNotReboot is what a daemon's status says of a reboot that did not happen on boot bootID.
func didNotReboot(bootID string) string {
	return "the boot id " + bootID + " did not change: the reboot did not happen"
}

// SaysNotRebooted says whether a daemon's status says that its node did not reboot from boot
// bootID (see NotRebooted).
func SaysNotRebooted(status, bootID string) bool {
	return bootID != "" && strings.Contains(status, didNotReboot(bootID))
}

// WithinCooldown is the cooldown gate judged on the group's history at now: nil, or a "not now"
// error that knows when it opens. The end of the last reboot was written with the clock of the
// node that rebooted: it is judged by when seen saw it (see lock.Sightings).
func WithinCooldown(l history.Log, cooldown time.Duration, now time.Time, seen *lock.Sightings) error {
	if cooldown <= 0 {
		return nil
	}
	var last time.Time
	for _, e := range l.Entries {
		if e.Outcome == history.Finished && e.End.After(last) {
			last = e.End
		}
	}
	last = seen.At("history/finished", last, now)
	until := last.Add(cooldown)
	if last.IsZero() || !now.Before(until) {
		return nil
	}
	return &ending.Error{Gate: ending.ErrOutsideWindow, Name: "cooldown", Until: until,
		Msg: fmt.Sprintf("cooldown: the group's last reboot finished at %s; the next may start at %s", last.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))}
}

// OutsideWindow is the reboot window gate at now: a node outside its windows, or on a blackout
// date, does not start (and does not hold the lock while it waits).
func OutsideWindow(s window.Schedule, now time.Time) error {
	if s.Open(now) {
		return nil
	}
	next := s.Next(now)
	if next.IsZero() {
		return ending.Fail(ending.ErrOutsideWindow, "outside every reboot window, and none opens within 400 days")
	}
	return ending.Fail(ending.ErrOutsideWindow, "outside the reboot window: the next opens at %s", next.Format(time.RFC3339))
}

// WithinInterval is the least time between two reboots of node, judged on its group's history at
// now for the request req: nil, or a "not now" error that knows when it opens. When req is the
// very request the last reboot was for (a reboot-required file not written since that reboot
// finished, or the same reboot-required command, whose answer carries no date, still saying
// so), the reboot did not clear it, and the error wraps ending.ErrSignalNotCleared too.
func WithinInterval(l history.Log, node string, interval time.Duration, now time.Time, req Request) error {
	if interval <= 0 {
		return nil
	}
	last, ok := place.LastReboot(l, node)
	if !ok {
		return nil
	}
	until := last.End.Add(interval)
	if !now.Before(until) {
		return nil
	}
	end, next := last.End.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)
	if signalNotCleared(last, req) {
		return &ending.Error{Gate: ending.ErrOutsideWindow, Err: ending.ErrSignalNotCleared, Name: intervalGate, Until: until, Msg: fmt.Sprintf(
			"the reboot signal did not clear after the reboot: %s still asks for one, as it did before this node's reboot that finished at %s; no reboot before %s (min reboot interval %s): look at what asks",
			req.Why, end, next, interval)}
	}
	return &ending.Error{Gate: ending.ErrOutsideWindow, Name: intervalGate, Until: until,
		Msg: fmt.Sprintf("min reboot interval: this node's last reboot finished at %s; the next may start at %s", end, next)}
}

// intervalGate names the min reboot interval's gate.
const intervalGate = "min reboot interval"

// signalNotCleared says whether req is the request the reboot last did was for.
func signalNotCleared(last history.Entry, req Request) bool {
	switch {
	case !req.Written.IsZero():
		// A file the reboot's end did not remove, or that the boot wrote again.
		return !req.Written.After(last.End)
	case req.Command:
		return req.Why == last.TriggeredBy
	}
	return false
}
