package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	ok, err := c.cas(ctx, &api.KVPair{Key: key, Value: []byte(value)}, "write key "+key)
	if err != nil {
		return place.Flag{}, err
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
	ok, err := c.deleteCAS(ctx, &api.KVPair{Key: key, ModifyIndex: index}, "delete key "+key)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: %w", key, ErrConflict)
	}
	return nil
}

// Unlock removes node from the lock record (and the fleet's holders) and returns the entry
// removed. It reads the record once, asks judge whether that entry may go (judge's error is
// returned and nothing written), and writes with check-and-set: a change of that entry made
// after it was judged, even while judge looked, is ErrConflict and nothing is written. A change
// of anything else meanwhile (the queue, another holder) is read again and written against, as
// a release is: it changes nothing judged.
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
	_, _, err = place.ChangeLock(ctx, c, c.logger(), func(now place.View) (place.Change, error) {
		if again, holds := now.Lock.Holder(node); holds != ok || (ok && !again.Equal(h)) {
			return place.Change{}, fmt.Errorf("reboot lock %s: %s's entry: %w", c.Keys.GroupLock(c.Group), node, ErrConflict)
		}
		return place.ReleaseIn(now, node, c.now()), nil
	})
	if err != nil {
		return lock.Holder{}, err
	}
	return h, nil
}

// CatalogNode reads node from Consul's catalog: whether Consul knows it, and its node meta. A
// node Consul hides from the token is ErrFiltered, never "unknown".
func (c *Consul) CatalogNode(ctx context.Context, node string) (known bool, meta map[string]string, err error) {
	if err := ValidNode(node); err != nil {
		return false, nil, err
	}
	r := reading{what: fmt.Sprintf("look up node %s in consul", node)}
	n, qm, err := readSome(ctx, c.Options, r, func(q *api.QueryOptions) (*api.CatalogNode, *api.QueryMeta, error) {
		return c.Client.Catalog().Node(node, q)
	})
	if err != nil {
		return false, nil, err
	}
	if n == nil || n.Node == nil {
		if qm.ResultsFilteredByACLs {
			return false, nil, r.filtered()
		}
		// Consul answers a node the token may not read as one it does not know.
		return false, nil, c.hiddenNodes(ctx, r)
	}
	return true, n.Node.Meta, nil
}

// hiddenNodes is r's ErrFiltered when Consul hides nodes from the token: it says so, or (it does
// not say so to an anonymous token) it shows none at all, when a catalog holds at least its
// servers' nodes. Read only when a node is not found.
func (c *Consul) hiddenNodes(ctx context.Context, r reading) error {
	nodes, qm, err := readSome(ctx, c.Options, r, func(q *api.QueryOptions) ([]*api.Node, *api.QueryMeta, error) {
		return c.Client.Catalog().Nodes(q)
	})
	if err != nil {
		return err
	}
	if qm.ResultsFilteredByACLs || len(nodes) == 0 {
		return r.filtered()
	}
	return nil
}

// CatalogEntry is a node as Consul's catalog has it: its node meta, and the names of its
// services.
type CatalogEntry struct {
	Meta     map[string]string
	Services []string
}

// CatalogEntry reads node from Consul's catalog with all its services (services Consul hides
// from the token are ErrFiltered: one of them may be the one asked about); false when Consul
// knows no node of that name.
func (c *Consul) CatalogEntry(ctx context.Context, node string) (CatalogEntry, bool, error) {
	if err := ValidNode(node); err != nil {
		return CatalogEntry{}, false, err
	}
	r := reading{what: fmt.Sprintf("look up node %s in consul", node)}
	n, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) (*api.CatalogNode, *api.QueryMeta, error) {
		return c.Client.Catalog().Node(node, q)
	})
	if err != nil || n == nil || n.Node == nil {
		return CatalogEntry{}, false, err
	}
	e := CatalogEntry{Meta: n.Node.Meta}
	for _, svc := range n.Services {
		e.Services = append(e.Services, svc.Service)
	}
	return e, true, nil
}

// nodeChecks reads node's checks.
func (c *Consul) nodeChecks(ctx context.Context, node string) (api.HealthChecks, error) {
	checks, _, err := read(ctx, c.Options, reading{what: fmt.Sprintf("read health of node %s", node)}, func(q *api.QueryOptions) (api.HealthChecks, *api.QueryMeta, error) {
		return c.Client.Health().Node(node, q)
	})
	return checks, err
}

// NodeAlive reports whether Consul sees node's agent alive (its serfHealth passing).
func (c *Consul) NodeAlive(ctx context.Context, node string) (bool, error) {
	checks, err := c.nodeChecks(ctx, node)
	if err != nil {
		return false, err
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
	_, _, err := place.ChangeLock(ctx, c, c.logger(), func(v place.View) (place.Change, error) {
		if state, _ := v.Version.(*viewState); state == nil || state.index[key] != index {
			return place.Change{}, fmt.Errorf("%s: %w", key, ErrConflict)
		}
		ch := place.Change{Lock: v.Lock, Limit: &l}
		if lock.Free(v.Lock, l, nodes) > 0 && len(v.Queue.Entries) > 0 {
			q := v.Queue
			q.Freed = c.now().UTC()
			ch.Queue = &q
		}
		return ch, nil
	})
	return err
}

// GroupKnown reports whether rebootmgr or Consul knows group: a key of it exists, or a node
// names it in its node meta. The default group always exists. When neither is found and Consul
// hid results from the token, it cannot tell: ErrFiltered, never "unknown".
func (c *Consul) GroupKnown(ctx context.Context, group string) (bool, error) {
	if groupName(group) == DefaultGroup {
		return true, nil
	}
	prefix := c.Keys.GroupPrefix(group)
	keys, kmeta, err := readSome(ctx, c.Options, reading{what: "list keys " + prefix}, func(q *api.QueryOptions) ([]string, *api.QueryMeta, error) {
		return c.Client.KV().Keys(prefix, "/", q)
	})
	if err != nil {
		return false, err
	}
	if len(keys) > 0 {
		return true, nil
	}
	opts := c.Options
	opts.NodeMeta = map[string]string{GroupMeta: group}
	nodes, nmeta, err := readSome(ctx, opts, reading{what: fmt.Sprintf("look up the nodes of group %s in consul", group)}, c.Client.Catalog().Nodes)
	if err != nil {
		return false, err
	}
	if len(nodes) > 0 {
		return true, nil
	}
	if kmeta.ResultsFilteredByACLs || nmeta.ResultsFilteredByACLs {
		return false, reading{what: fmt.Sprintf("look for group %s (keys under %s, nodes with node meta %s=%s)", group, prefix, GroupMeta, group)}.filtered()
	}
	return false, nil
}

// NodeMaintenance says whether node is in maintenance mode, and why, as the catalog has it.
func (c *Consul) NodeMaintenance(ctx context.Context, node string) (reason string, on bool, err error) {
	checks, err := c.nodeChecks(ctx, node)
	if err != nil {
		return "", false, err
	}
	for _, ch := range checks {
		if ch.CheckID == nodeMaintenanceCheck {
			return ch.Notes, true, nil
		}
	}
	return "", false, nil
}

// Nodes are the names of the nodes in Consul's catalog the token may see (for a shell's
// completion: what it may not see, it does not offer).
func (c *Consul) Nodes(ctx context.Context) ([]string, error) {
	nodes, _, err := readSome(ctx, c.Options, reading{what: "read nodes from consul"}, c.Client.Catalog().Nodes)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Node)
	}
	return out, nil
}

// Groups are the groups nodes name in their meta, those with keys, and the default one, as
// far as the token may see them (for a shell's completion).
func (c *Consul) Groups(ctx context.Context) ([]string, error) {
	out := []string{DefaultGroup}
	nodes, _, err := readSome(ctx, c.Options, reading{what: "read nodes from consul"}, c.Client.Catalog().Nodes)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if g := n.Meta[GroupMeta]; g != "" {
			out = append(out, g)
		}
	}
	withKeys, err := c.groupsWithKeys(ctx, false)
	if err != nil {
		return nil, err
	}
	return append(out, withKeys...), nil
}

// groupsWithKeys lists the groups with keys under Keys.GroupsPrefix, by their names there: all
// of them (a group hidden from the token is ErrFiltered), or, not whole, those the token may
// see.
func (c *Consul) groupsWithKeys(ctx context.Context, whole bool) ([]string, error) {
	prefix := c.Keys.GroupsPrefix()
	r := reading{what: "read groups under " + prefix, needs: fmt.Sprintf("key_prefix %q read", prefix)}
	get := func(q *api.QueryOptions) ([]string, *api.QueryMeta, error) { return c.Client.KV().Keys(prefix, "/", q) }
	how := readSome[[]string]
	if whole {
		how = read[[]string]
	}
	dirs, _, err := how(ctx, c.Options, r, get)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		if g, ok := strings.CutSuffix(strings.TrimPrefix(d, prefix), "/"); ok && g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}
