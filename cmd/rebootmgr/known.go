package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/store"
)

// What an operator names may not exist: a group nothing knows, a node Consul has never heard
// of (a typo, most often). Reads say so rather than showing an empty answer as if it were one.

// groupKeys is the prefix under which every key of group lives (lock, limit, stop, history).
func groupKeys(k store.Keys, group string) string {
	return strings.TrimSuffix(k.GroupLimit(group), "limit")
}

// groupKnown reports whether rebootmgr or Consul knows group: a key of it exists, or a node
// names it in its node meta. The default group always exists.
func (o *operator) groupKnown(ctx context.Context, group string) (bool, error) {
	if group == store.DefaultGroup {
		return true, nil
	}
	prefix := groupKeys(o.keys, group)
	keys, _, err := o.client.KV().Keys(prefix, "/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("list keys %s: %w", prefix, err)
	}
	if len(keys) > 0 {
		return true, nil
	}
	nodes, _, err := o.client.Catalog().Nodes((&api.QueryOptions{NodeMeta: map[string]string{store.GroupMeta: group}}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("look up the nodes of group %s in consul: %w", group, err)
	}
	return len(nodes) > 0, nil
}

// noGroup is the error for a group nothing knows.
func (o *operator) noGroup(group string) error {
	return fmt.Errorf("no group %s: no key under %s and no node with node meta %s=%s (a typo?)", group, groupKeys(o.keys, group), store.GroupMeta, group)
}

// nodeKnown reports whether Consul's catalog has node.
func (o *operator) nodeKnown(ctx context.Context, node string) (bool, error) {
	n, _, err := o.client.Catalog().Node(node, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("look up node %s in consul: %w", node, err)
	}
	return n != nil && n.Node != nil, nil
}
