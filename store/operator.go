package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// ErrConflict means a key changed between reading and writing it: nothing was written.
var ErrConflict = errors.New("changed by someone else while writing: nothing was written, look and try again")

// ErrExists means a key that is only ever created (never overwritten) already exists.
var ErrExists = errors.New("already set")

// Create writes key only if it does not exist; an existing key keeps its value and ErrExists is
// returned with it.
func (c *Consul) Create(ctx context.Context, key, value string) (place.Flag, error) {
	if err := CheckKey(key); err != nil {
		return place.Flag{}, err
	}
	ok, _, err := c.Client.KV().CAS(&api.KVPair{Key: key, Value: []byte(value)}, c.write(ctx))
	if err != nil {
		return place.Flag{}, fmt.Errorf("write key %s: %w", key, err)
	}
	if ok {
		return place.Flag{}, nil
	}
	existing, err := c.Flag(ctx, key)
	if err != nil {
		return place.Flag{}, err
	}
	return existing, fmt.Errorf("%s: %w", key, ErrExists)
}

// Remove deletes key if it exists and has not changed since it was read; it returns what it
// deleted (Set false when there was nothing).
func (c *Consul) Remove(ctx context.Context, key string) (place.Flag, error) {
	f, err := c.Flag(ctx, key)
	if err != nil || !f.Set {
		return f, err
	}
	return f, c.RemoveAt(ctx, key, f.Index)
}

// RemoveAt deletes key only if its ModifyIndex is still index: a change made after it was read
// is a conflict, never lost.
func (c *Consul) RemoveAt(ctx context.Context, key string, index uint64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	ok, _, err := c.Client.KV().DeleteCAS(&api.KVPair{Key: key, ModifyIndex: index}, c.write(ctx))
	if err != nil {
		return fmt.Errorf("delete key %s: %w", key, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w", key, ErrConflict)
	}
	return nil
}

// Unlock removes node from the lock record (and the fleet's holders) and returns the entry removed. It reads the record
// once, asks judge whether that entry may go (judge's error is returned and nothing written),
// and writes with check-and-set against that very read: a change made after it, even while
// judge looked, is ErrConflict and nothing is written.
func (c *Consul) Unlock(ctx context.Context, node string, judge func(lock.Holder) error) (lock.Holder, error) {
	if err := ValidNode(node); err != nil {
		return lock.Holder{}, err
	}
	v, err := c.View(ctx)
	if err != nil {
		return lock.Holder{}, err
	}
	h, ok := v.Lock.Holder(node)
	if !ok {
		if g, in := v.Fleet.Group(node); !in || g != v.Group {
			return lock.Holder{}, fmt.Errorf("%s does not hold the reboot lock of group %s (holders: %d)", node, v.Group, len(v.Lock.Holders))
		}
		// The fleet's holders name a place the group's record no longer has (a record
		// deleted by hand): giving it back ends its counting as a reboot in flight.
		h = lock.Holder{Node: node}
	} else if err := judge(h); err != nil {
		return lock.Holder{}, err
	}
	// A place given back: the group's queue notes that one opened, as a release does.
	ok, err = c.Commit(ctx, v, place.ReleaseIn(v, node, time.Now()))
	if err != nil {
		return lock.Holder{}, err
	}
	if !ok {
		return lock.Holder{}, fmt.Errorf("reboot lock %s: %w", c.Keys.GroupLock(c.Group), ErrConflict)
	}
	return h, nil
}

// CatalogNode reads node from Consul's catalog: whether Consul knows it, and its node meta. A
// node Consul hides from the token is ErrFiltered, never "unknown".
func (c *Consul) CatalogNode(ctx context.Context, node string) (known bool, meta map[string]string, err error) {
	if err := ValidNode(node); err != nil {
		return false, nil, err
	}
	n, qm, err := c.Client.Catalog().Node(node, c.query(ctx))
	if err != nil {
		return false, nil, fmt.Errorf("look up node %s in consul: %w", node, err)
	}
	if n == nil || n.Node == nil {
		if qm.ResultsFilteredByACLs {
			return false, nil, fmt.Errorf("look up node %s in consul: %w", node, ErrFiltered)
		}
		return false, nil, nil
	}
	return true, n.Node.Meta, nil
}

// NodeAlive reports whether Consul sees node's agent alive (its serfHealth passing).
func (c *Consul) NodeAlive(ctx context.Context, node string) (bool, error) {
	checks, _, err := c.Client.Health().Node(node, c.query(ctx))
	if err != nil {
		return false, fmt.Errorf("read health of node %s: %w", node, err)
	}
	for _, ch := range checks {
		if ch.CheckID == "serfHealth" {
			return ch.Status == api.HealthPassing, nil
		}
	}
	return false, nil
}

// SetLimit writes the group's limit, if its key is still at index (0: absent); a change made
// after it was read is ErrConflict, never lost. A limit that gives the group more room than
// its holders take opens places: the queue notes it in the same transaction (its Freed), so the
// first nodes of the queue hear of it and take the new places in their order (see
// place.Woken), not whoever looks first.
func (c *Consul) SetLimit(ctx context.Context, l lock.Limit, index uint64) error {
	key := c.Keys.GroupLimit(c.Group)
	if err := CheckKey(key); err != nil {
		return err
	}
	nodes := 0
	if l.Percent > 0 {
		var err error
		if nodes, err = c.GroupNodes(ctx); err != nil {
			return err
		}
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	_, _, err := place.ChangeLock(ctx, c, log, func(v place.View) (place.Change, error) {
		if state, _ := v.Version.(*viewState); state == nil || state.index[key] != index {
			return place.Change{}, fmt.Errorf("%s: %w", key, ErrConflict)
		}
		ch := place.Change{Lock: v.Lock, Limit: &l}
		if lock.Free(v.Lock, l, nodes) > 0 && len(v.Queue.Entries) > 0 {
			q := v.Queue
			q.Freed = time.Now().UTC()
			ch.Queue = &q
		}
		return ch, nil
	})
	return err
}

// GroupPrefix is the prefix under which every key of group lives (lock, limit, stop, history).
func (k Keys) GroupPrefix(group string) string {
	return k.Prefix + "/groups/" + groupName(group) + "/"
}

// GroupKnown reports whether rebootmgr or Consul knows group: a key of it exists, or a node
// names it in its node meta. The default group always exists. When neither is found and Consul
// hid results from the token, it cannot tell: ErrFiltered, never "unknown".
func (c *Consul) GroupKnown(ctx context.Context, group string) (bool, error) {
	if groupName(group) == DefaultGroup {
		return true, nil
	}
	prefix := c.Keys.GroupPrefix(group)
	keys, kmeta, err := c.Client.KV().Keys(prefix, "/", c.query(ctx))
	if err != nil {
		return false, fmt.Errorf("list keys %s: %w", prefix, err)
	}
	if len(keys) > 0 {
		return true, nil
	}
	q := c.query(ctx)
	q.NodeMeta = map[string]string{GroupMeta: group}
	nodes, nmeta, err := c.Client.Catalog().Nodes(q)
	if err != nil {
		return false, fmt.Errorf("look up the nodes of group %s in consul: %w", group, err)
	}
	if len(nodes) > 0 {
		return true, nil
	}
	if kmeta.ResultsFilteredByACLs || nmeta.ResultsFilteredByACLs {
		return false, fmt.Errorf("look for group %s (keys under %s, nodes with node meta %s=%s): %w", group, prefix, GroupMeta, group, ErrFiltered)
	}
	return false, nil
}

// NodeMaintenance says whether node is in maintenance mode, and why, as the catalog has it.
func (c *Consul) NodeMaintenance(ctx context.Context, node string) (reason string, on bool, err error) {
	checks, _, err := c.Client.Health().Node(node, c.query(ctx))
	if err != nil {
		return "", false, fmt.Errorf("read health of node %s: %w", node, err)
	}
	for _, ch := range checks {
		if ch.CheckID == nodeMaintenanceCheck {
			return ch.Notes, true, nil
		}
	}
	return "", false, nil
}

// Nodes are the names of the nodes in Consul's catalog.
func (c *Consul) Nodes(ctx context.Context) ([]string, error) {
	nodes, _, err := c.Client.Catalog().Nodes(c.query(ctx))
	if err != nil {
		return nil, fmt.Errorf("read nodes from consul: %w", err)
	}
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Node)
	}
	return out, nil
}

// Groups are the groups nodes name in their meta, those with keys, and the default one.
func (c *Consul) Groups(ctx context.Context) ([]string, error) {
	out := []string{DefaultGroup}
	nodes, _, err := c.Client.Catalog().Nodes(c.query(ctx))
	if err != nil {
		return nil, fmt.Errorf("read nodes from consul: %w", err)
	}
	for _, n := range nodes {
		if g := n.Meta[GroupMeta]; g != "" {
			out = append(out, g)
		}
	}
	prefix := c.Keys.Prefix + "/groups/"
	keys, _, err := c.Client.KV().Keys(prefix, "/", c.query(ctx))
	if err != nil {
		return nil, fmt.Errorf("read groups under %s: %w", prefix, err)
	}
	for _, k := range keys {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(k, prefix), "/"))
	}
	return out, nil
}
