package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/cas"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// markerTag starts the value of every marker rebootmgr writes in the Python rebootmgr's keys.
// The Python rebootmgr takes a marker that starts with its own host name for its own reboot
// (and finishes it: it deletes the marker), so the value must start with something no host
// name starts with: a bare node name would be taken by the Python node whose name is a prefix
// of it (web-1 for web-12).
const markerTag = "[rebootmgr]"

// MarkerValue is the marker rebootmgr writes for its holders: "[rebootmgr] NODE...".
func MarkerValue(nodes []string) string {
	return markerTag + " " + strings.Join(slices.Sorted(slices.Values(nodes)), " ")
}

// OwnMarker says whether a marker's value is one rebootmgr wrote (not the Python rebootmgr's).
func OwnMarker(value string) bool {
	return strings.HasPrefix(strings.TrimSpace(value), markerTag)
}

// viewState is what a View was read at: the index of every key it holds (0: absent), and the
// markers rebootmgr itself left in the Python rebootmgr's keys, with their values.
type viewState struct {
	index   map[string]uint64
	markers map[string]string
	// queue and asks are the group's queue as stored: its record, and its asks (see lock.Merged).
	queue lock.Queue
	asks  []lock.Ask
}

// View reads the group's lock record, limit and queue (its record and its asks, or for
// place.FrontOnly the reader's own ask alone), the fleet's record and the Python rebootmgr's
// keys in one consistent transaction. A session lock held on a Python lock key, or
// a Python marker that rebootmgr did not write, is a Python holder (View.Legacy).
func (c *Consul) View(ctx context.Context) (place.View, error) {
	stopKey, groupStopKey, pyStopKey := c.Keys.Stop(), c.Keys.GroupStop(c.Group), c.Keys.PythonGroupStop(c.Group)
	legacy := c.Keys.LegacyKeys(c.Group)
	keys := append([]string{c.Keys.GroupLock(c.Group), c.Keys.GroupLimit(c.Group), c.Keys.Holders(), stopKey, groupStopKey, pyStopKey,
		c.Keys.GroupQueue(c.Group), c.Keys.Claims()}, legacy...)
	prefixes := []string{c.Keys.GroupAsks(c.Group)}
	node, partial := place.FrontFor(ctx)
	if partial {
		// The queue's front: its record and the reader's own ask, not every ask of the group.
		prefixes = nil
		keys = append(keys, c.Keys.GroupAsk(c.Group, node))
	}
	self, named := place.NodeOf(ctx)
	if named {
		if err := ValidNode(self); err != nil {
			return place.View{}, err
		}
		keys = append(keys, c.disabledKeys(self)...)
	}
	pairs, asks, err := c.getTree(ctx, keys, prefixes...)
	if err != nil {
		return place.View{}, err
	}
	if partial {
		if own := pairs[c.Keys.GroupAsk(c.Group, node)]; own != nil {
			asks = []*api.KVPair{own}
		}
	}
	v := place.View{Group: groupName(c.Group), Legacy: map[string]string{}, Partial: partial}
	if named {
		v.Disabled = c.disabledIn(self, pairs)
	}
	state := &viewState{index: map[string]uint64{}, markers: map[string]string{}}
	if state.queue, err = c.Keys.decodeQueueRecord(pairs[c.Keys.GroupQueue(c.Group)]); err != nil {
		return place.View{}, err
	}
	if state.asks, err = c.Keys.DecodeAsks(c.Group, asks); err != nil {
		return place.View{}, err
	}
	for _, key := range keys {
		state.index[key] = 0
		if p := pairs[key]; p != nil {
			state.index[key] = p.ModifyIndex
		}
	}
	v.Version = state
	if v.Stop = flagOf(pairs[stopKey]); !v.Stop.Set {
		v.Stop = c.groupStop(flagOf(pairs[groupStopKey]))
	}
	if !v.Stop.Set {
		v.Stop = c.pythonGroupStop(flagOf(pairs[pyStopKey]))
	}
	if err := c.viewRecords(ctx, &v, pairs); err != nil {
		return place.View{}, err
	}
	v.Queue = lock.Merged(state.queue, state.asks)
	for _, key := range legacy {
		p := pairs[key]
		if p == nil {
			continue
		}
		session := key == c.Keys.LegacySession() || key == c.Keys.LegacyGroupSession(c.Group)
		if node, held := pythonHolder(session, p); held {
			v.Legacy[key] = node
		} else if !session && OwnMarker(string(p.Value)) {
			state.markers[key] = string(p.Value)
		}
	}
	return v, nil
}

// viewRecords decodes into v the records pairs hold (each as it is when absent): the group's
// lock record and limit, the fleet's holders and claims. A record that cannot be read is an
// error, never an empty one.
func (c *Consul) viewRecords(ctx context.Context, v *place.View, pairs map[string]*api.KVPair) error {
	lockKey, fleetKey, claimsKey := c.Keys.GroupLock(c.Group), c.Keys.Holders(), c.Keys.Claims()
	v.Lock, v.Fleet = lock.Record{Version: lock.Version}, lock.Fleet{Version: lock.Version}
	var err error
	if p := pairs[lockKey]; p != nil {
		if v.Lock, err = lock.Decode(p.Value); err != nil {
			return fmt.Errorf("reboot lock %s: %w (fix or delete the key by hand after checking which nodes are rebooting)", lockKey, err)
		}
	}
	if err := c.viewLimit(ctx, v, pairs[c.Keys.GroupLimit(c.Group)]); err != nil {
		return err
	}
	if v.Claims, err = decodeClaims(claimsKey, pairs[claimsKey]); err != nil {
		return err
	}
	if p := pairs[fleetKey]; p != nil {
		if v.Fleet, err = lock.DecodeFleet(p.Value); err != nil {
			return fmt.Errorf("fleet's lock holders %s: %w (fix or delete the key by hand after checking which nodes are rebooting)", fleetKey, err)
		}
	}
	return nil
}

// viewLimit decodes into v the group's limit its key's pair holds (lock.One when absent) and,
// for a limit that is a share of the group's nodes or bounded per zone, reads them from the
// catalog.
func (c *Consul) viewLimit(ctx context.Context, v *place.View, p *api.KVPair) error {
	v.Limit = lock.One
	if p == nil {
		return nil
	}
	var err error
	if v.Limit, err = lock.ParseLimit(string(p.Value)); err != nil {
		return fmt.Errorf("key %s: %w", p.Key, err)
	}
	if v.Limit.Percent == 0 && v.Limit.PerZone == 0 {
		return nil
	}
	// The share is of the nodes Consul knows now, and the zones are theirs: read beside the
	// transaction, as the group's nodes change seldom and are no record the write depends on (a
	// zone orders the queue; the holders' own zones judge the places).
	n, zones, err := c.groupCatalog(ctx)
	if err != nil {
		return err
	}
	if v.Limit.Percent > 0 {
		v.GroupNodes = n
	}
	if v.Limit.PerZone > 0 {
		v.Zones = zones
	}
	return nil
}

// decodeClaims is the claims record a key's pair holds (empty when absent).
func decodeClaims(key string, p *api.KVPair) (lock.Claims, error) {
	if p == nil {
		return lock.Claims{Version: lock.Version}, nil
	}
	cl, err := lock.DecodeClaims(p.Value)
	if err != nil {
		return lock.Claims{}, fmt.Errorf("fleet's claims of room %s: %w (delete the key: it only orders the nodes waiting)", key, err)
	}
	return cl, nil
}

// ChangeClaims writes the fleet's claims of room as change makes them from the record as read
// (consistently), with check-and-set, reading again after a lost race (see cas.Loop).
func (c *Consul) ChangeClaims(ctx context.Context, change func(lock.Claims) (lock.Claims, error)) error {
	key := c.Keys.Claims()
	err := cas.Loop(ctx, func() (bool, error) {
		pairs, err := c.getAll(ctx, []string{key})
		if err != nil {
			return false, err
		}
		was, err := decodeClaims(key, pairs[key])
		if err != nil {
			return false, err
		}
		var index uint64
		if p := pairs[key]; p != nil {
			index = p.ModifyIndex
		}
		now, err := change(was)
		if err != nil {
			return false, err
		}
		if len(now.Claims) == 0 && index == 0 {
			return true, nil
		}
		if data, err := now.Encode(); err == nil && index != 0 && bytes.Equal(data, pairs[key].Value) {
			// Nothing to write: a write would wake every node watching the claims.
			return true, nil
		}
		op, err := casOp(key, index, len(now.Claims) == 0, now.Encode)
		if err != nil {
			return false, err
		}
		return c.txn(ctx, api.TxnOps{op})
	})
	if errors.Is(err, cas.ErrRaces) {
		return fmt.Errorf("claims %s: %w: %w", key, ErrConflict, err)
	}
	return err
}

// getAll reads keys in one consistent transaction; an absent key has no pair. A key the token
// may not read is an error, never "absent".
func (c *Consul) getAll(ctx context.Context, keys []string) (map[string]*api.KVPair, error) {
	pairs, _, err := c.getTree(ctx, keys)
	return pairs, err
}

// getTree is getAll, with every key under prefixes besides in the same transaction. A key under
// them that the token may not read is an error too (Consul says it hid results).
func (c *Consul) getTree(ctx context.Context, keys []string, prefixes ...string) (map[string]*api.KVPair, []*api.KVPair, error) {
	ops := make(api.TxnOps, len(keys), len(keys)+len(prefixes))
	for i, key := range keys {
		ops[i] = &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: key}}
	}
	what := "read keys " + strings.Join(keys, ", ")
	for _, prefix := range prefixes {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: prefix}})
	}
	if len(prefixes) > 0 {
		what += " and under " + strings.Join(prefixes, ", ")
	}
	under := func(key string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(key, p) })
	}
	resp, _, err := read(ctx, c.Options, reading{what: what}, func(q *api.QueryOptions) (*api.TxnResponse, *api.QueryMeta, error) {
		ok, resp, meta, err := c.Client.Txn().Txn(ops, q)
		switch {
		case err != nil:
			return nil, meta, err
		case !ok:
			return nil, meta, txnErrors(resp)
		}
		return resp, meta, nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]*api.KVPair, len(keys))
	var tree []*api.KVPair
	found := 0
	for _, r := range resp.Results {
		switch {
		case r.KV == nil:
		case under(r.KV.Key):
			tree = append(tree, r.KV)
		case r.KV.ModifyIndex != 0:
			out[r.KV.Key] = r.KV
			found++
		default:
			found++
		}
	}
	if found != len(keys) {
		return nil, nil, reading{what: what}.filtered()
	}
	return out, tree, nil
}
