package release010

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Fleet is every node that holds a place in any group's lock, with its group: the reboots in
// flight across the whole fleet. It is written in the same Consul transaction as the group's
// record whenever a holder is added or removed, so that taking a place anywhere is ordered
// against taking a place everywhere else: a node that takes a place has counted every node
// that took one before it.
type Fleet struct {
	Version int               `json:"version"`
	Holders map[string]string `json:"holders"`
}

// fleetShape is the fleet record's shape: its holders are any node names, each once.
func fleetShape() *shape {
	return &shape{fields: map[string]*shape{"version": nil, "holders": {}}}
}

// DecodeFleet parses a stored fleet record strictly: unknown or repeated fields, a node named
// twice, a missing holders field, a holder without a group and trailing data are errors, never
// an empty fleet.
func DecodeFleet(data []byte) (Fleet, error) {
	if err := checkShape(data, fleetShape()); err != nil {
		return Fleet{}, fmt.Errorf("not a fleet record: %w", err)
	}
	var raw struct {
		Version *int               `json:"version"`
		Holders *map[string]string `json:"holders"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Fleet{}, fmt.Errorf("not a fleet record: %w", err)
	}
	if dec.More() {
		return Fleet{}, errors.New("not a fleet record: trailing data")
	}
	if raw.Version == nil || raw.Holders == nil || *raw.Holders == nil {
		return Fleet{}, errors.New("not a fleet record: version or holders missing")
	}
	if *raw.Version < 1 {
		return Fleet{}, fmt.Errorf("not a fleet record: version %d", *raw.Version)
	}
	if *raw.Version > Version {
		return Fleet{}, fmt.Errorf("fleet record version %d was written by a newer rebootmgr (this one knows %d)", *raw.Version, Version)
	}
	for node, group := range *raw.Holders {
		if node == "" || group == "" {
			return Fleet{}, fmt.Errorf("fleet record: holder %q in group %q: empty name", node, group)
		}
	}
	return Fleet{Version: *raw.Version, Holders: *raw.Holders}, nil
}
