package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rebootmgr/rebootmgr/store"
)

// What an operator names may not exist: a group nothing knows, a node Consul has never heard
// of (a typo, most often). Reads say so rather than showing an empty answer as if it were one;
// writes refuse, unless forced.
//
// A group is known when a node of Consul's catalog names it in its node meta rebootmgr-group, or
// a key of it exists under PREFIX/groups/GROUP/ (its limit, stop flag, lock, queue or history);
// the default group always is. Results Consul hides from the token are never taken for "unknown".

// noGroup is the error for a group nothing knows.
func (o *operator) noGroup(group string) error {
	return fmt.Errorf("no group %s: no key under %s and no node with node meta %s=%s (a typo?)", group, o.keys.GroupPrefix(group), store.GroupMeta, group)
}

// requireGroup refuses a group nothing knows, saying what then (the way on, or "--force writes
// anyway"), unless forced. A group the token cannot see is refused too: it may well exist.
func (o *operator) requireGroup(ctx context.Context, group, then string, force bool) error {
	if force {
		return nil
	}
	known, err := o.store.GroupKnown(ctx, group)
	if errors.Is(err, store.ErrFiltered) {
		return fmt.Errorf("this token cannot see whether group %s exists: %w; %s", group, err, then)
	}
	if err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("%w; %s", o.noGroup(group), then)
	}
	return nil
}

// ownGroupKnown refuses to act as a node of a group given by --group (or REBOOTMGR_GROUP) that
// nothing knows: a typo there would take the lock of a group of its own, beside the one the node
// belongs to. Not a usage error when the token cannot see it.
func ownGroupKnown(ctx context.Context, st *store.Consul, group string) error {
	known, err := st.GroupKnown(ctx, group)
	if errors.Is(err, store.ErrFiltered) {
		return fmt.Errorf("--group %s: this token cannot see whether group %s exists: %w", group, group, err)
	}
	if err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("%w: --group %s: no group %s: no key under %s and no node with node meta %s=%s (a typo?): a group is made by its nodes' node meta %s, or by rebootmgr limit %s N --force",
			errUsage, group, group, st.Keys.GroupPrefix(group), store.GroupMeta, group, store.GroupMeta, group)
	}
	return nil
}
