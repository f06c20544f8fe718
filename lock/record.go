// Package lock holds the fleet's reboot lock as a pure value: who holds it, in which phase,
// since when. The record survives the reboot of its holder: it is stored in Consul KV and
// written only with check-and-set (see package store), never bound to a session that would
// expire while the node is down.
package lock

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
)

// Version is the record format this build writes. A record with a higher version was written
// by a newer rebootmgr and is refused rather than rewritten without the fields it does not know.
const Version = 1

// Phase is where a holder is in its reboot.
type Phase string

// The phases of a holder, in order.
const (
	// Preparing: gates passed, pre-boot tasks and settle under way. A run that dies here starts
	// over from the gates, keeping the lock.
	Preparing Phase = "preparing"
	// Rebooting: the reboot command was run; the boot id recorded must change.
	Rebooting Phase = "rebooting"
	// Finishing: the node is back; post-boot tasks and health under way.
	Finishing Phase = "finishing"
)

func (p Phase) valid() bool {
	switch p {
	case Preparing, Rebooting, Finishing:
		return true
	}
	return false
}

// Holder is one node holding the lock.
type Holder struct {
	Node    string    `json:"node"`
	Phase   Phase     `json:"phase"`
	Since   time.Time `json:"since"`
	Updated time.Time `json:"updated"`
	// BootID is the node's boot id when the reboot command was run.
	BootID string `json:"boot_id,omitempty"`
	// RebootStarted is when the reboot command was run; trigger files newer than this are
	// new requests and survive the completion of this reboot.
	RebootStarted time.Time `json:"reboot_started,omitzero"`
	// TriggerIndex is the ModifyIndex of the node's reboot_required key when the reboot
	// started (0: none); the key is deleted afterwards only if it has not changed since.
	TriggerIndex uint64 `json:"trigger_index,omitempty"`
	// Deadline is when the holder must have finished its post-boot part (set when the reboot
	// starts). A holder past it is never released by itself: the nodes that see it stop the
	// group for an operator to look.
	Deadline time.Time `json:"deadline,omitzero"`
	// TriggeredBy says what asked for the reboot.
	TriggeredBy string `json:"triggered_by,omitempty"`
}

// Overdue returns the holders whose deadline has passed at now.
func (r Record) Overdue(now time.Time) []Holder {
	var out []Holder
	for _, h := range r.Holders {
		if !h.Deadline.IsZero() && now.After(h.Deadline) {
			out = append(out, h)
		}
	}
	return out
}

// NextDeadline is the earliest deadline of a holder still within it (zero when none).
func (r Record) NextDeadline(now time.Time) time.Time {
	var next time.Time
	for _, h := range r.Holders {
		if !h.Deadline.IsZero() && !now.After(h.Deadline) && (next.IsZero() || h.Deadline.Before(next)) {
			next = h.Deadline
		}
	}
	return next
}

// Record is the lock: the nodes that hold it. It is designed for several holders; the
// limit is passed to Acquire by the caller.
type Record struct {
	Version int      `json:"version"`
	Holders []Holder `json:"holders"`
}

// ErrFull means the lock has as many holders as its limit allows.
var ErrFull = errors.New("reboot lock is full")

// ErrNotHeld means a node tried to change a holder entry it does not have.
var ErrNotHeld = errors.New("reboot lock not held")

// FullError says who holds a full lock.
type FullError struct {
	Limit   int
	Holders []Holder
}

func (e *FullError) Error() string {
	names := make([]string, len(e.Holders))
	for i, h := range e.Holders {
		names[i] = fmt.Sprintf("%s (%s since %s)", h.Node, h.Phase, h.Since.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("reboot lock held by %s (limit %d)", strings.Join(names, ", "), e.Limit)
}

func (e *FullError) Unwrap() error { return ErrFull }

// Holder returns the entry of node, if it holds the lock.
func (r Record) Holder(node string) (Holder, bool) {
	for _, h := range r.Holders {
		if h.Node == node {
			return h, true
		}
	}
	return Holder{}, false
}

// Acquire returns the record with h added as a holder. A node that already holds the lock
// keeps its entry unchanged. When the record has limit holders or more, it returns a
// *FullError and the record unchanged.
func (r Record) Acquire(h Holder, limit int) (Record, error) {
	if _, ok := r.Holder(h.Node); ok {
		return r, nil
	}
	if limit < 1 {
		return r, fmt.Errorf("reboot lock limit %d: must be at least 1", limit)
	}
	if len(r.Holders) >= limit {
		return r, &FullError{Limit: limit, Holders: append([]Holder(nil), r.Holders...)}
	}
	out := r.clone()
	out.Holders = append(out.Holders, h)
	return out, nil
}

// Update replaces the entry of h.Node; the node must hold the lock.
func (r Record) Update(h Holder) (Record, error) {
	out := r.clone()
	for i := range out.Holders {
		if out.Holders[i].Node == h.Node {
			out.Holders[i] = h
			return out, nil
		}
	}
	return r, fmt.Errorf("%w by %s", ErrNotHeld, h.Node)
}

// Release returns the record without node's entry; releasing a lock not held changes nothing.
func (r Record) Release(node string) Record {
	out := Record{Version: r.Version}
	for _, h := range r.Holders {
		if h.Node != node {
			out.Holders = append(out.Holders, h)
		}
	}
	return out
}

func (r Record) clone() Record {
	return Record{Version: r.Version, Holders: append([]Holder(nil), r.Holders...)}
}

// Encode returns the record as stored. What triggered a reboot is cut when long (see package
// clip): a request's text must never make the lock too large to be written.
func (r Record) Encode() ([]byte, error) {
	r.Version = Version
	holders := make([]Holder, len(r.Holders))
	for i, h := range r.Holders {
		h.TriggeredBy = clip.Text(h.TriggeredBy)
		holders[i] = h
	}
	r.Holders = holders
	return json.Marshal(r)
}

// Decode parses a stored record and checks it. Anything it cannot fully understand is an
// error: a lock that cannot be read must not be overwritten or ignored.
func Decode(data []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("not a lock record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("not a lock record: trailing data")
	}
	if r.Version < 1 {
		return Record{}, fmt.Errorf("not a lock record: version %d", r.Version)
	}
	if r.Version > Version {
		return Record{}, fmt.Errorf("lock record version %d was written by a newer rebootmgr (this one knows %d)", r.Version, Version)
	}
	seen := make(map[string]bool, len(r.Holders))
	for i, h := range r.Holders {
		if h.Node == "" {
			return Record{}, fmt.Errorf("lock record holder %d has no node", i)
		}
		if seen[h.Node] {
			return Record{}, fmt.Errorf("lock record names %s twice", h.Node)
		}
		seen[h.Node] = true
		if !h.Phase.valid() {
			return Record{}, fmt.Errorf("lock record holder %s has unknown phase %q", h.Node, h.Phase)
		}
	}
	return r, nil
}
