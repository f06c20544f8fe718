package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rebootmgr/rebootmgr/store"
)

// pythonSide is the Python rebootmgr's half of a mark (see store/python.go): what a command
// writes there besides its own key, so that a node still running the Python rebootmgr is held
// (or let go) as well. set says whether the command sets its mark (with value) or removes it.
// It returns what it changed ("" for nothing).
type pythonSide func(ctx context.Context, o *operator, node, group, value string, set bool) (string, error)

// pythonGroupStop is the Python rebootmgr's stop flag of the group named (none for the fleet's,
// which both share).
func pythonGroupStop(ctx context.Context, o *operator, _, group, value string, set bool) (string, error) {
	if group == "" {
		return "", nil
	}
	key := o.keys.PythonGroupStop(group)
	if set {
		if _, err := o.store.Create(ctx, key, value); err != nil && !errors.Is(err, store.ErrExists) {
			return "", err
		}
		return "the Python rebootmgr's stop flag of the group " + key + " is set", nil
	}
	removed, err := o.store.Remove(ctx, key)
	if err != nil || !removed.Set {
		return "", err
	}
	return "removed the Python rebootmgr's stop flag of the group " + key + ": " + orNone(removed.Value), nil
}

// pythonEnabled is the "enabled" of the node's Python rebootmgr config.
func pythonEnabled(ctx context.Context, o *operator, node, _, value string, set bool) (string, error) {
	return o.store.SetPythonEnabled(ctx, node, !set, value)
}

// writePython runs a command's Python side after its own key was written (done says what that
// was); an error says that the Python side is not held, and what was.
func (m markCommand) writePython(ctx context.Context, o *operator, node, group, value string, done string) (string, error) {
	if m.python == nil {
		return "", nil
	}
	changed, err := m.python(ctx, o, node, group, value, m.set)
	if err != nil {
		return "", fmt.Errorf("%s; but a node still running the Python rebootmgr is not held the same: %w", done, err)
	}
	return changed, nil
}
