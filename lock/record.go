// Package lock holds the fleet's reboot lock as a pure value: who holds it, in which phase,
// since when. The record survives the reboot of its holder: it is stored in Consul KV and
// written only with check-and-set (see package store), never bound to a session that would
// expire while the node is down.
package lock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
)

// DefaultGroup is the group of the nodes that name none: the whole fleet.
const DefaultGroup = "default"

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
	// Zone is the holder's zone (node meta rebootmgr-zone), kept only in a group bounded per
	// zone.
	Zone string `json:"zone,omitempty"`
}

// FleetLockTriggeredBy is what the entry of a host that took its place through a FleetLock
// request says asked for its reboot (see package fleetlock), and what that host's reboots say
// in the history. A node's own reboot never says it (its request is a file, a key, a command
// or an operator), so a node never takes such an entry, or such a reboot, for its own.
const FleetLockTriggeredBy = "FleetLock pre-reboot"

// FleetLock says whether the entry is a FleetLock host's, not a node's of that name.
func (h Holder) FleetLock() bool { return h.TriggeredBy == FleetLockTriggeredBy }

// Overdue returns the holders whose deadline has passed at now (see DeadlineOf).
func (r Record) Overdue(now time.Time, seen *Sightings) []Holder {
	var out []Holder
	for _, h := range r.Holders {
		if d := h.DeadlineOf(now, seen); !d.IsZero() && now.After(d) {
			out = append(out, h)
		}
	}
	return out
}

// NextDeadline is the earliest deadline of a holder still within it (zero when none; see
// DeadlineOf).
func (r Record) NextDeadline(now time.Time, seen *Sightings) time.Time {
	var next time.Time
	for _, h := range r.Holders {
		if d := h.DeadlineOf(now, seen); !d.IsZero() && !now.After(d) && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

// DeadlineOf is h's deadline as the reader judges it at now: the holder wrote its reboot's start
// and its deadline with its own clock, so the deadline is as far after the start as written,
// and the start is judged by when seen saw it (see Sightings). A deadline written by a clock
// behind is then never taken as passed before its time (the holder's reboot would stop its
// group as it begins), nor one written by a clock ahead as far off. Zero: no deadline.
func (h Holder) DeadlineOf(now time.Time, seen *Sightings) time.Time {
	if h.Deadline.IsZero() {
		return time.Time{}
	}
	start := h.RebootStarted
	if start.IsZero() {
		start = h.Since
	}
	if start.IsZero() {
		return h.Deadline
	}
	return seen.At("deadline/"+h.Node, start, now).Add(h.Deadline.Sub(start))
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
	// Zone, when set, is the zone that holds the places: the node's own, full (its limit per
	// zone), or Other, one zone of the group while the node is of another. ZoneLess, with
	// Other, names the node of no zone (the holder, or the node asking) that keeps the other
	// out: a zone of its own.
	Zone     string
	Other    bool
	ZoneLess string
}

func (e *FullError) Error() string {
	names := make([]string, len(e.Holders))
	for i, h := range e.Holders {
		names[i] = fmt.Sprintf("%s (%s since %s)", h.Node, h.Phase, h.Since.UTC().Format(time.RFC3339))
	}
	switch {
	case e.Other && e.ZoneLess != "":
		return fmt.Sprintf("reboot lock held by %s: %s has no zone (node meta rebootmgr-zone), so it is a zone of its own and reboots alone, one zone at a time", strings.Join(names, ", "), e.ZoneLess)
	case e.Other:
		return fmt.Sprintf("reboot lock held by %s: zone %s is rebooting, one zone at a time", strings.Join(names, ", "), e.Zone)
	case e.Zone != "":
		return fmt.Sprintf("reboot lock held by %s (zone %s: %d per zone)", strings.Join(names, ", "), e.Zone, e.Limit)
	}
	return fmt.Sprintf("reboot lock held by %s (limit %d)", strings.Join(names, ", "), e.Limit)
}

func (e *FullError) Unwrap() error { return ErrFull }

// Equal says whether two entries are the same, as stored.
func (h Holder) Equal(o Holder) bool {
	return Record{Holders: []Holder{h}}.Equal(Record{Holders: []Holder{o}})
}

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
	if data, err := out.Encode(); err == nil && len(data) > MaxRecordBytes {
		return r, &BoundError{What: "reboot lock record", Bytes: len(data), Bound: MaxRecordBytes, Entries: len(r.Holders)}
	}
	return out, nil
}

// Equal says whether two records hold the same holders, as stored.
func (r Record) Equal(o Record) bool {
	a, aerr := r.Encode()
	b, berr := o.Encode()
	return aerr == nil && berr == nil && bytes.Equal(a, b)
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
// error: a lock that cannot be read must not be overwritten or ignored. Besides what Encode
// writes, it refuses what encoding/json would quietly accept: a field it does not know (at the
// top or in a holder, a known one in other letter case included), a field given twice (json
// keeps the last one), a record without "version" or "holders", "holders" null, and anything
// after the record.
func Decode(data []byte) (Record, error) {
	if err := checkShape(data, recordShape()); err != nil {
		return Record{}, fmt.Errorf("not a lock record: %w", err)
	}
	var wire struct {
		Version json.RawMessage `json:"version"`
		Holders json.RawMessage `json:"holders"`
	}
	if err := strictUnmarshal(data, &wire); err != nil {
		return Record{}, fmt.Errorf("not a lock record: %w", err)
	}
	var r Record
	switch {
	case wire.Version == nil:
		return Record{}, errors.New(`not a lock record: no "version" field`)
	case wire.Holders == nil:
		return Record{}, errors.New(`not a lock record: no "holders" field (a free lock is "holders":[] or no key at all)`)
	case string(wire.Holders) == "null":
		return Record{}, errors.New(`not a lock record: "holders" is null, not a list`)
	}
	if err := strictUnmarshal(wire.Version, &r.Version); err != nil {
		return Record{}, fmt.Errorf(`not a lock record: "version" is %.40s, not a whole number`, wire.Version)
	}
	if err := strictUnmarshal(wire.Holders, &r.Holders); err != nil {
		return Record{}, fmt.Errorf(`not a lock record: "holders" is not a list of holders: %w`, err)
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
