package store

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
)

// Turn is a node's turn key in its group's queue, as read (see TurnValue): whether it tells of
// a place opened, and the index of its last write.
type Turn struct {
	Place bool
	Index uint64
}

// Turns reads the turn keys of the group's queue: node -> turn, and the index to wait on for
// the next change. With index above 0 it waits, up to wait, for a change after index first.
func (c *Consul) Turns(ctx context.Context, index uint64, wait time.Duration) (map[string]Turn, uint64, error) {
	prefix := c.Keys.GroupTurns(c.Group)
	opts := c.Options
	opts.WaitIndex, opts.WaitTime = index, wait
	r := reading{what: "read the turn keys " + prefix, needs: fmt.Sprintf("key_prefix %q read", prefix)}
	pairs, meta, err := read(ctx, opts, r, func(q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
		return c.Client.KV().List(prefix, q)
	})
	if err != nil {
		return nil, 0, err
	}
	out := map[string]Turn{}
	for _, p := range pairs {
		if k, ok := c.Keys.Parse(p.Key); ok && k.Kind == KindTurn {
			out[k.Node] = Turn{Place: TurnIsPlace(p.Value), Index: p.ModifyIndex}
		}
	}
	return out, meta.LastIndex, nil
}

// OtherQueues reads the queues (records and asks) of the groups with keys other than the
// store's own, in transactions of as many operations as Consul takes: group -> queue. A group
// whose name is none (a key written by hand), or whose queue is empty or cannot be decoded, is
// left out: it orders nothing.
func (c *Consul) OtherQueues(ctx context.Context) (map[string]lock.Queue, error) {
	groups, err := c.groupsWithKeys(ctx, true)
	if err != nil {
		return nil, err
	}
	var others []string
	for _, g := range groups {
		if g != groupName(c.Group) && ValidGroup(g) == nil {
			others = append(others, g)
		}
	}
	out := map[string]lock.Queue{}
	// Each group's record and asks: two operations of a transaction.
	for start := 0; start < len(others); start += maxTxnOps / 2 {
		chunk := others[start:min(start+maxTxnOps/2, len(others))]
		var keys, prefixes []string
		for _, g := range chunk {
			keys, prefixes = append(keys, c.Keys.GroupQueue(g)), append(prefixes, c.Keys.GroupAsks(g))
		}
		pairs, asks, err := c.getTree(ctx, keys, prefixes...)
		if err != nil {
			return nil, err
		}
		for _, g := range chunk {
			if q, err := c.Keys.DecodeGroupQueue(g, pairs[c.Keys.GroupQueue(g)], asks); err == nil && len(q.Entries) > 0 {
				out[g] = q
			}
		}
	}
	return out, nil
}
