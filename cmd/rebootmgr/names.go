package main

import (
	"fmt"

	"github.com/rebootmgr/rebootmgr/store"
)

// Every node and group name goes into a key; these check one where it enters (see
// store.ValidNode). A bad name typed by the operator, as an argument, a flag or its
// environment variable, is a usage error.

// validate checks the prefix (the node and group flags are checked where they are parsed, by
// their rules).
func (g *connFlags) validate() error {
	if err := store.CheckKey(g.prefix); err != nil {
		return fmt.Errorf("%w: --prefix: %v", errUsage, err)
	}
	return nil
}

// nodeArg checks a node named as an argument.
func nodeArg(name string) error {
	if err := store.ValidNode(name); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// nodeFlag checks the value of --node.
func nodeFlag(name string) error {
	if err := store.ValidNode(name); err != nil {
		return fmt.Errorf("%w: --node: %v", errUsage, err)
	}
	return nil
}

// groupFlag checks the value of --group.
func groupFlag(name string) error {
	if err := store.ValidGroup(name); err != nil {
		return fmt.Errorf("%w: --group: %v", errUsage, err)
	}
	return nil
}

// groupMeta checks the group a node names in its node meta: not a usage error, the node's
// agent configuration must change.
func groupMeta(node, name string) error {
	if err := store.ValidGroup(name); err != nil {
		return fmt.Errorf("node meta %s of node %s: %w", store.GroupMeta, node, err)
	}
	return nil
}
