package main

import (
	"fmt"

	"github.com/rebootmgr/rebootmgr/store"
)

// What an operator names may not exist: a group nothing knows, a node Consul has never heard
// of (a typo, most often). Reads say so rather than showing an empty answer as if it were one.

// noGroup is the error for a group nothing knows.
func (o *operator) noGroup(group string) error {
	return fmt.Errorf("no group %s: no key under %s and no node with node meta %s=%s (a typo?)", group, o.keys.GroupPrefix(group), store.GroupMeta, group)
}
