// Package release010 is rebootmgr 0.1.0's decoders (release commit a550584), frozen: the code
// that release runs to read every record it shares with later releases (the lock records, the
// queues, the fleet's holders, the histories, the limits and the settings a daemon publishes),
// copied as it is there with only what reads left in. Tests decode what this version writes with
// it, so that a record a node of the previous release cannot read is found here, not in a fleet
// that moves between the two. Never change it to make a test pass: it is what 0.1.0 runs.
package release010

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
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

// Record is the lock: the nodes that hold it. It is designed for several holders; the
// limit is passed to Acquire by the caller.
type Record struct {
	Version int      `json:"version"`
	Holders []Holder `json:"holders"`
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

// strictUnmarshal is json.Unmarshal that refuses unknown fields.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// shape is what a JSON value of the record may hold: for an object, the fields it may have
// (each with its own shape, nil: any value); for a list, the shape of its elements.
type shape struct {
	fields map[string]*shape
	elem   *shape
}

// recordShape is the record's shape, taken from the json tags of Record and Holder so that a
// field added there is known here.
func recordShape() *shape {
	holder := &shape{fields: map[string]*shape{}}
	for _, name := range jsonFields(reflect.TypeFor[Holder]()) {
		holder.fields[name] = nil
	}
	return &shape{fields: map[string]*shape{
		"version": nil,
		"holders": {elem: holder},
	}}
}

// jsonFields are the names a struct's fields have in JSON.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// checkShape reads data token by token: it must be one JSON object and nothing after it, no
// object in it may give a field twice, and every field must be one the shape s has, spelled as
// Encode spells it.
func checkShape(data []byte, s *shape) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return errors.New("empty value")
	}
	if err != nil {
		return syntax("", err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("want a JSON object, found %s", describe(tok))
	}
	if err := walkObject(dec, "", s, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the record")
	}
	return nil
}

// maxDepth bounds how deeply the values of a record may nest; a record nests three deep.
const maxDepth = 10

// walkValue reads one value whose first token is tok, at path and depth.
func walkValue(dec *json.Decoder, tok json.Token, path string, s *shape, depth int) error {
	if tok == json.Delim('{') || tok == json.Delim('[') {
		if depth++; depth > maxDepth {
			return fmt.Errorf("%svalues nested more than %d deep", inPath(path), maxDepth)
		}
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, path, s, depth)
	case json.Delim('['):
		var elem *shape
		if s != nil {
			elem = s.elem
		}
		for i := 0; dec.More(); i++ {
			t, err := dec.Token()
			if err != nil {
				return syntax(path, err)
			}
			if err := walkValue(dec, t, fmt.Sprintf("%s[%d]", path, i), elem, depth); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return syntax(path, err)
		}
	}
	return nil
}

// walkObject reads the rest of an object whose '{' was read, at path and depth.
func walkObject(dec *json.Decoder, path string, s *shape, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return syntax(path, err)
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("%sfield %q appears twice", inPath(path), key)
		}
		seen[key] = true
		var field *shape
		if s != nil && s.fields != nil {
			f, ok := s.fields[key]
			if !ok {
				return fmt.Errorf("%sunknown field %q (known: %s)", inPath(path), key, strings.Join(slices.Sorted(maps.Keys(s.fields)), ", "))
			}
			field = f
		}
		child := key
		if path != "" {
			child = path + "." + key
		}
		t, err = dec.Token()
		if err != nil {
			return syntax(child, err)
		}
		if err := walkValue(dec, t, child, field, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return syntax(path, err)
	}
	return nil
}

// inPath names a place in the record at the start of an error ("" at the top).
func inPath(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// syntax is a JSON syntax error met at path.
func syntax(path string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%sthe value ends early (truncated?)", inPath(path))
	}
	return fmt.Errorf("%s%w", inPath(path), err)
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}
