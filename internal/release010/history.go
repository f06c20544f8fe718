package release010

import (
	"encoding/json"
	"fmt"
	"time"
)

// Outcomes of a reboot.
const (
	Finished       = "finished"
	TaskFailed     = "task failed"
	DeadlinePassed = "deadline passed"
	// RebootFailed: the reboot command itself failed (the lock stays in phase rebooting).
	RebootFailed = "reboot command failed"
	// Unlocked: an operator released the node's place (rebootmgr unlock); it follows whatever
	// went wrong, which has its own entry, so it is no failure of its own.
	Unlocked = "unlocked"
	// SignalNotCleared: right after a reboot of the node, what asked for it still asked (no
	// reboot followed; told once). Not a failed reboot.
	SignalNotCleared = "reboot signal did not clear"
)

// Entry is one reboot, or one that failed.
type Entry struct {
	Node        string    `json:"node"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Outcome     string    `json:"outcome"`
	Detail      string    `json:"detail,omitempty"`
	TriggeredBy string    `json:"triggered_by,omitempty"`
}

// Failed reports whether the entry counts against the circuit breaker.
func (e Entry) Failed() bool {
	return e.Outcome != Finished && e.Outcome != Unlocked && e.Outcome != SignalNotCleared
}

// Log is a group's history, oldest first.
type Log struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// DecodeHistory parses a stored log (history.Decode in 0.1.0).
func DecodeHistory(data []byte) (Log, error) {
	var l Log
	if err := json.Unmarshal(data, &l); err != nil {
		return Log{}, fmt.Errorf("not a history: %w", err)
	}
	if l.Version != 1 {
		return Log{}, fmt.Errorf("history version %d is not known to this rebootmgr", l.Version)
	}
	return l, nil
}
