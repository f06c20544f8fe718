package place

import (
	"errors"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
)

// StopError is the end of a run at a stop flag f that is set. Its line names the flag's key
// where it is known (the fleet's, the group's, or the Python rebootmgr's of the group).
func StopError(f Flag) error {
	// A group's flag says whose it is before its reason ("group G: "), which may be empty.
	v := strings.TrimSuffix(clip.OneLine(f.Value), ":")
	var about []string
	if f.Key != "" && !strings.Contains(v, f.Key) {
		about = append(about, f.Key)
	}
	if v != "" {
		about = append(about, v)
	}
	if len(about) == 0 {
		return stopped{ending.Fail(ending.ErrStopped, "stop flag is set: halted, nothing further is started"), f}
	}
	return stopped{ending.Fail(ending.ErrStopped, "stop flag is set (%s): halted, nothing further is started", strings.Join(about, ": ")), f}
}

// stopped is a StopError, with the flag it is of.
type stopped struct {
	error
	flag Flag
}

func (s stopped) Unwrap() error { return s.error }

// StopFlagOf is the flag a StopError in err's chain is of.
func StopFlagOf(err error) (Flag, bool) {
	var s stopped
	if errors.As(err, &s) {
		return s.flag, true
	}
	return Flag{}, false
}

// LastReboot is node's last finished reboot in the group's history (false: none recorded). A
// FleetLock host's reboot under the same name is another machine's, and not counted (see
// LastHostReboot).
func LastReboot(l history.Log, node string) (history.Entry, bool) {
	return lastFinished(l, node, false)
}

// LastHostReboot is the last finished reboot of the FleetLock host host in the group's history
// (false: none recorded); a node's of the same name is not counted.
func LastHostReboot(l history.Log, host string) (history.Entry, bool) {
	return lastFinished(l, host, true)
}

func lastFinished(l history.Log, name string, fleetLock bool) (history.Entry, bool) {
	var last history.Entry
	found := false
	for _, e := range l.Entries {
		if e.Node == name && e.Outcome == history.Finished && (e.TriggeredBy == lock.FleetLockTriggeredBy) == fleetLock && (!found || e.End.After(last.End)) {
			last, found = e, true
		}
	}
	return last, found
}

// FleetLockHolds is the gate of a node whose name a FleetLock host holds a place under (see
// lock.Holder.FleetLock): that host is another machine, whose reboot this node neither
// finishes nor gives back. The node waits until the host's steady-state (or an operator) gives
// the place back.
func FleetLockHolds(h lock.Holder, node, group string) error {
	return ending.Fail(ending.ErrLockHeld, "a FleetLock host named %s holds a place in group %s's lock (%s since %s): it is not this node, which neither finishes nor gives back its reboot, and waits until the host's steady-state gives the place back (or rebootmgr unlock %s --force%s, once the host is known to be up); give the host an id no node has",
		node, group, h.Phase, h.Since.UTC().Format(time.RFC3339), node, ending.GroupFlag(group))
}
