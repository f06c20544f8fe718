// Package history is the record of a group's reboots: who rebooted, when, how it ended and who
// asked for it, kept in Consul with a bounded length and size. The circuit breaker reads it.
package history

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
)

// MaxEntries bounds a group's history; the oldest entries go first.
const MaxEntries = 200

// MaxBytes bounds a group's history as stored, far below the 512 kB Consul takes in one value:
// a history that could not be written again would blind the circuit breaker and the cooldown.
// The oldest entries go first.
const MaxBytes = 64 << 10

// Outcomes of a reboot.
const (
	Finished       = "finished"
	TaskFailed     = "task failed"
	DeadlinePassed = "deadline passed"
	// RebootFailed: the reboot command itself failed (the lock stays in phase rebooting).
	RebootFailed = "reboot command failed"
	// NotRebooted: the reboot command ran, and the node's boot id did not change (the lock
	// stays in phase rebooting until an operator unlocks it). Recorded once.
	NotRebooted = "did not reboot"
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

// Duration is how long the reboot took.
func (e Entry) Duration() time.Duration { return e.End.Sub(e.Start) }

// Log is a group's history, oldest first.
type Log struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// Append returns the log with e added (its texts cut, see package clip), keeping the last
// entries that fit in MaxEntries and, encoded, in MaxBytes; e itself is always kept. A log
// already past the bounds shrinks to them. A finished reboot of the same node and start as one
// in the log is that one recorded again (a run that recorded it was killed before it gave its
// place back, and the next run finishes it again): it takes that one's place, and the log holds
// it once.
func (l Log) Append(e Entry) Log {
	e.Detail = clip.Text(e.Detail)
	e.TriggeredBy = clip.Text(e.TriggeredBy)
	entries := slices.DeleteFunc(slices.Clone(l.Entries), func(o Entry) bool {
		return e.Outcome == Finished && !e.Start.IsZero() && o.Node == e.Node && o.Outcome == e.Outcome && o.Start.Equal(e.Start)
	})
	entries = append(entries, e)
	if len(entries) > MaxEntries {
		entries = entries[len(entries)-MaxEntries:]
	}
	return Log{Version: 1, Entries: newestThatFit(entries)}
}

// newestThatFit returns the newest entries whose log, encoded, is at most MaxBytes (at least
// the newest one).
func newestThatFit(entries []Entry) []Entry {
	size := len(`{"version":1,"entries":[]}`)
	for i := len(entries) - 1; i >= 0; i-- {
		data, err := json.Marshal(entries[i])
		if err != nil {
			// Encode reports it.
			continue
		}
		n := len(data)
		if i < len(entries)-1 {
			n++ // the comma
		}
		if size+n > MaxBytes && i < len(entries)-1 {
			return entries[i+1:]
		}
		size += n
	}
	return entries
}

// FailuresSince returns the failed entries that ended after since.
func (l Log) FailuresSince(since time.Time) []Entry {
	var out []Entry
	for _, e := range l.Entries {
		if e.Failed() && e.End.After(since) {
			out = append(out, e)
		}
	}
	return out
}

// Encode returns the log as stored.
func (l Log) Encode() ([]byte, error) {
	l.Version = 1
	if l.Entries == nil {
		l.Entries = []Entry{}
	}
	return json.Marshal(l)
}

// Decode parses a stored log.
func Decode(data []byte) (Log, error) {
	var l Log
	if err := json.Unmarshal(data, &l); err != nil {
		return Log{}, fmt.Errorf("not a history: %w", err)
	}
	if l.Version != 1 {
		return Log{}, fmt.Errorf("history version %d is not known to this rebootmgr", l.Version)
	}
	return l, nil
}

// Breaker stops a group after Failures failed reboots within Period; zero Failures is off.
type Breaker struct {
	Failures int
	Period   time.Duration
}

// Trips reports whether the log, at now, has as many failures in the period as the breaker
// allows, and returns them.
func (b Breaker) Trips(l Log, now time.Time) ([]Entry, bool) {
	if b.Failures <= 0 {
		return nil, false
	}
	f := l.FailuresSince(now.Add(-b.Period))
	return f, len(f) >= b.Failures
}

// ParseBreaker reads "K/PERIOD" such as "3/1h"; "" and "off" are off.
func ParseBreaker(s string) (Breaker, error) {
	if s == "" || s == "off" {
		return Breaker{}, nil
	}
	var k int
	var period string
	if n, err := fmt.Sscanf(s, "%d/%s", &k, &period); n != 2 || err != nil || k < 1 {
		return Breaker{}, fmt.Errorf("breaker %q: want FAILURES/PERIOD such as 3/1h, or off", s)
	}
	d, err := time.ParseDuration(period)
	if err != nil || d <= 0 {
		return Breaker{}, fmt.Errorf("breaker %q: want FAILURES/PERIOD such as 3/1h, or off", s)
	}
	return Breaker{Failures: k, Period: d}, nil
}
