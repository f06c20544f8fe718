package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// The Python rebootmgr's own marks, which a fleet moving from it holds on both sides: a node's
// config (its "enabled" and its "group") and a group's stop flag. rebootmgr reads them as the
// Python rebootmgr does, and its disable, enable, stop --group and resume --group write them
// too, so that every stop and disable holds a node whichever rebootmgr runs on it.

// PythonDisabled says whether a Python config disables its node there, and why, as the Python
// rebootmgr judges it: not a JSON object, or without "enabled" (nor the older "disabled"), it
// never reboots the node ("configuration missing"); an "enabled" that Python takes for false
// (false, null, 0, "", [], {}) disables it.
func PythonDisabled(value []byte) (reason string, disabled bool) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(value, &cfg); err != nil || cfg == nil {
		return "cannot be read as a JSON object: the Python rebootmgr takes it for missing and never reboots the node; fix or delete it", true
	}
	enabled, ok := cfg["enabled"]
	if !ok {
		old, ok := cfg["disabled"]
		if !ok {
			return `has no "enabled": the Python rebootmgr takes it for missing and never reboots the node`, true
		}
		if truthy(old) {
			return `says "disabled": true`, true
		}
		return "", false
	}
	if truthy(enabled) {
		return "", false
	}
	var message string
	_ = json.Unmarshal(cfg["message"], &message)
	if message == "" {
		return `says "enabled": false`, true
	}
	return `says "enabled": false: ` + message, true
}

// truthy is a JSON value as Python's bool() takes it.
func truthy(v json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(v)); s {
	case "false", "null", `""`, "[]", "{}":
		return false
	default:
		var f float64
		if json.Unmarshal(v, &f) == nil {
			return f != 0
		}
		var x any
		if json.Unmarshal(v, &x) == nil {
			switch x := x.(type) {
			case []any:
				return len(x) > 0
			case map[string]any:
				return len(x) > 0
			}
		}
		return true
	}
}

// PythonGroup is the group a Python config names ("" when none, or unreadable).
func PythonGroup(value []byte) string {
	var cfg struct {
		Group any `json:"group"`
	}
	if json.Unmarshal(value, &cfg) != nil {
		return ""
	}
	g, _ := cfg.Group.(string)
	return g
}

// pythonDisabledFlag is the disabled mark a Python config pair gives its node (Set false when
// it gives none).
func (c *Consul) pythonDisabledFlag(node string, p *api.KVPair) pipeline.Flag {
	if p == nil {
		return pipeline.Flag{}
	}
	reason, disabled := PythonDisabled(p.Value)
	if !disabled {
		return pipeline.Flag{}
	}
	return pipeline.Flag{Set: true, Value: "the Python rebootmgr's config " + c.Keys.PythonConfig(node) + " " + reason, Index: p.ModifyIndex}
}

// SetPythonEnabled writes enabled (and message, why) into node's Python config, keeping its
// other fields, with check-and-set, so that a Python node is held (or let go) as a rebootmgr
// node is. A node without a config is left so (the Python rebootmgr never reboots it), and so
// is one the config already says so of. It says what it changed ("" for nothing); a config that
// cannot be read as a JSON object is an error, and a config changed meanwhile a conflict.
func (c *Consul) SetPythonEnabled(ctx context.Context, node string, enabled bool, message string) (string, error) {
	if err := ValidNode(node); err != nil {
		return "", err
	}
	key := c.Keys.PythonConfig(node)
	pair, err := c.get(ctx, key, "read key "+key)
	if err != nil {
		return "", err
	}
	if pair == nil {
		return "", nil
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(pair.Value, &cfg); err != nil || cfg == nil {
		return "", fmt.Errorf("the Python rebootmgr's config %s cannot be read as a JSON object (the Python rebootmgr never reboots the node while it is so): fix or delete it", key)
	}
	if _, disabled := PythonDisabled(pair.Value); disabled != enabled {
		return "", nil
	}
	cfg["enabled"], _ = json.Marshal(enabled)
	cfg["message"], _ = json.Marshal(clip.Text(message))
	data, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", key, err)
	}
	ok, err := c.cas(ctx, &api.KVPair{Key: key, Value: data, ModifyIndex: pair.ModifyIndex}, "write key "+key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%s changed while it was written: %w", key, ErrConflict)
	}
	return fmt.Sprintf("%s: \"enabled\": %v", key, enabled), nil
}

// pythonGroupStop is groupStop for the Python rebootmgr's stop flag of the group.
func (c *Consul) pythonGroupStop(f pipeline.Flag) pipeline.Flag {
	if f.Set {
		f.Value = "group " + groupName(c.Group) + " (the Python rebootmgr's " + c.Keys.PythonGroupStop(c.Group) + "): " + f.Value
	}
	return f
}
