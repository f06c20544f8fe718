// Package store keeps rebootmgr's state in Consul: the fleet's stop flag, each node's
// reboot request and disabled mark, the reboot lock record (written only with
// check-and-set), and node maintenance through the local agent.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/cas"
	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/watch"
)

// maintenancePrefix starts every maintenance reason rebootmgr sets, so that it never ends a
// maintenance an operator started.
const maintenancePrefix = "rebootmgr:"

// Consul is the store in Consul, for the nodes of one group.
type Consul struct {
	Client *api.Client
	Keys   Keys
	// Group is the group whose lock, stop flag and limit apply ("" for the default group), set
	// when the store is made (see ForGroup).
	Group string
	// Options are applied to every query (datacenter, token).
	Options api.QueryOptions
	Logger  *slog.Logger
	// PythonMarkers makes every lock change also mark, in the Python rebootmgr's
	// reboot_in_progress keys, the reboots of rebootmgr in progress (see Commit), so that
	// nodes still running the Python rebootmgr wait for them. Without it, no marker is
	// written, and one of rebootmgr's own left from before is still kept up to date and
	// deleted with the last holder.
	PythonMarkers bool
	// NewBackOff makes the retry policy of WaitStop (watch.DefaultRetry when nil).
	NewBackOff func() backoff.BackOff
	// Now is the time the store writes into what it keeps (a turn key's, a member's first
	// sighting): time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	watches map[string]*flagWatch
	// known are the members of each service, as this store last read or wrote them; passed
	// are the nodes of the last Remember of each service.
	known, passed map[string]map[string]bool
}

var _ pipeline.Store = (*Consul)(nil)

// logger is the store's logger, one that says nothing when none was given.
func (c *Consul) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// now is the store's time (see Now).
func (c *Consul) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// ForGroup is a store of group with all else c has (its client, layout, options, logger,
// Python markers, retry policy and time): a store is of one group from when it is made, never
// made another's after.
func (c *Consul) ForGroup(group string) *Consul {
	return &Consul{Client: c.Client, Keys: c.Keys, Group: group, Options: c.Options, Logger: c.Logger,
		PythonMarkers: c.PythonMarkers, NewBackOff: c.NewBackOff, Now: c.Now}
}

func (c *Consul) query(ctx context.Context) *api.QueryOptions {
	q := c.Options
	return q.WithContext(ctx)
}

func (c *Consul) write(ctx context.Context) *api.WriteOptions {
	w := api.WriteOptions{Datacenter: c.Options.Datacenter, Token: c.Options.Token}
	return w.WithContext(ctx)
}

// get reads key (nil when absent; see read); what names the read in its errors.
func (c *Consul) get(ctx context.Context, key, what string) (*api.KVPair, error) {
	pair, _, err := read(ctx, c.Options, reading{what: what}, func(q *api.QueryOptions) (*api.KVPair, *api.QueryMeta, error) {
		return c.Client.KV().Get(key, q)
	})
	return pair, err
}

// cas writes p with check-and-set at its ModifyIndex (0: only if absent); false when the key
// changed (or exists). what names the write in its errors.
func (c *Consul) cas(ctx context.Context, p *api.KVPair, what string) (bool, error) {
	ok, _, err := c.Client.KV().CAS(p, c.write(ctx))
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, classify(err))
	}
	return ok, nil
}

// deleteCAS deletes p.Key if it is still at p.ModifyIndex (or absent); false when it changed.
func (c *Consul) deleteCAS(ctx context.Context, p *api.KVPair, what string) (bool, error) {
	ok, _, err := c.Client.KV().DeleteCAS(p, c.write(ctx))
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, classify(err))
	}
	return ok, nil
}

// Flag reads a key that means something by existing.
func (c *Consul) Flag(ctx context.Context, key string) (place.Flag, error) {
	if err := CheckKey(key); err != nil {
		return place.Flag{}, err
	}
	pair, err := c.get(ctx, key, "read key "+key)
	if err != nil {
		return place.Flag{}, err
	}
	return flagOf(pair), nil
}

func flagOf(pair *api.KVPair) place.Flag {
	if pair == nil {
		return place.Flag{}
	}
	return place.Flag{Set: true, Value: string(pair.Value), Index: pair.ModifyIndex, Key: pair.Key}
}

// Stop reads the fleet's stop flag and the group's (its own, then the Python rebootmgr's, see
// Keys.PythonGroupStop); the fleet's wins when both are set.
func (c *Consul) Stop(ctx context.Context) (place.Flag, error) {
	f, err := c.Flag(ctx, c.Keys.Stop())
	if err != nil || f.Set {
		return f, err
	}
	if f, err = c.Flag(ctx, c.Keys.GroupStop(c.Group)); err != nil || f.Set {
		return c.groupStop(f), err
	}
	f, err = c.Flag(ctx, c.Keys.PythonGroupStop(c.Group))
	return c.pythonGroupStop(f), err
}

// groupStop says, in the value of the group's stop flag, whose flag it is.
func (c *Consul) groupStop(f place.Flag) place.Flag {
	if f.Set {
		f.Value = "group " + groupName(c.Group) + ": " + f.Value
	}
	return f
}

// WaitStop blocks on the fleet's and the group's stop flags (the Python rebootmgr's too) until one is set, retrying errors
// with backoff. Every wait of the store shares one query per flag (see flagWatch).
func (c *Consul) WaitStop(ctx context.Context) (place.Flag, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		f   place.Flag
		err error
	}
	keys := []string{c.Keys.Stop(), c.Keys.GroupStop(c.Group), c.Keys.PythonGroupStop(c.Group)}
	for _, key := range keys {
		if err := CheckKey(key); err != nil {
			return place.Flag{}, err
		}
	}
	results := make(chan result, len(keys))
	for _, key := range keys {
		w := c.flagWatch(key)
		go func() {
			f, err := w.wait(ctx)
			switch {
			case err != nil || key == c.Keys.Stop():
			case key == c.Keys.GroupStop(c.Group):
				f = c.groupStop(f)
			default:
				f = c.pythonGroupStop(f)
			}
			results <- result{f, err}
		}()
	}
	r := <-results
	cancel()
	for range len(keys) - 1 {
		<-results
	}
	return r.f, r.err
}

// flagWatch is the store's shared watch of key.
func (c *Consul) flagWatch(key string) *flagWatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watches == nil {
		c.watches = map[string]*flagWatch{}
	}
	w, ok := c.watches[key]
	if !ok {
		w = &flagWatch{c: c, key: key}
		c.watches[key] = w
	}
	return w
}

// StopGroup sets the group's stop flag, keeping one already set (and its reason); it reports
// whether it set it. A long reason is cut (see package clip).
func (c *Consul) StopGroup(ctx context.Context, reason string) (bool, error) {
	key := c.Keys.GroupStop(c.Group)
	if err := CheckKey(key); err != nil {
		return false, err
	}
	return c.cas(ctx, &api.KVPair{Key: key, Value: []byte(clip.Text(reason))}, "write key "+key)
}

// History reads the group's history and its index (0: none yet).
func (c *Consul) History(ctx context.Context) (history.Log, uint64, error) {
	key := c.Keys.GroupHistory(c.Group)
	if err := CheckKey(key); err != nil {
		return history.Log{}, 0, err
	}
	pair, err := c.get(ctx, key, "read history "+key)
	if err != nil {
		return history.Log{}, 0, err
	}
	if pair == nil {
		return history.Log{Version: 1}, 0, nil
	}
	l, err := history.Decode(pair.Value)
	if err != nil {
		return history.Log{}, 0, fmt.Errorf("history %s: %w", key, err)
	}
	return l, pair.ModifyIndex, nil
}

// AppendHistory adds an entry to the group's history with check-and-set and returns the log.
func (c *Consul) AppendHistory(ctx context.Context, e history.Entry) (history.Log, error) {
	key := c.Keys.GroupHistory(c.Group)
	var out history.Log
	err := cas.Loop(ctx, func() (bool, error) {
		l, index, err := c.History(ctx)
		if err != nil {
			return false, err
		}
		l = l.Append(e)
		data, err := l.Encode()
		if err != nil {
			return false, err
		}
		ok, err := c.cas(ctx, &api.KVPair{Key: key, Value: data, ModifyIndex: index}, "write history "+key)
		if err != nil {
			return false, err
		}
		out = l
		return ok, nil
	})
	if errors.Is(err, cas.ErrRaces) {
		return history.Log{}, fmt.Errorf("history %s: %w: %w", key, ErrConflict, err)
	}
	return out, err
}

// Limit reads how many nodes of the group may hold its lock at once (lock.One when not set); a
// value that is not a limit is an error, never a guess.
func (c *Consul) Limit(ctx context.Context) (lock.Limit, error) {
	key := c.Keys.GroupLimit(c.Group)
	f, err := c.Flag(ctx, key)
	if err != nil || !f.Set {
		return lock.One, err
	}
	l, err := lock.ParseLimit(f.Value)
	if err != nil {
		return lock.Limit{}, fmt.Errorf("key %s: %w", key, err)
	}
	return l, nil
}

// GroupNodes counts the nodes of the group in Consul's catalog (node meta rebootmgr-group; a
// node without it is of the default group). Nodes hidden by ACLs are an error: a share of a
// group counted short would be a share of the wrong number.
func (c *Consul) GroupNodes(ctx context.Context) (int, error) {
	n, _, err := c.groupCatalog(ctx)
	return n, err
}

// groupCatalog reads the nodes of the group in Consul's catalog: how many there are, and the
// zones of those that name one (node meta rebootmgr-zone).
func (c *Consul) groupCatalog(ctx context.Context) (int, map[string]string, error) {
	opts := c.Options
	if group := groupName(c.Group); group != DefaultGroup {
		// Only the group's nodes travel (the default group's are those without the meta: all
		// must be read).
		opts.NodeMeta = map[string]string{GroupMeta: group}
	}
	r := reading{what: "read the nodes of group " + groupName(c.Group), needs: `node_prefix "" read`}
	nodes, _, err := read(ctx, opts, r, c.Client.Catalog().Nodes)
	if err != nil {
		return 0, nil, err
	}
	n, zones := 0, map[string]string{}
	for _, node := range nodes {
		if groupName(node.Meta[GroupMeta]) != groupName(c.Group) {
			continue
		}
		n++
		if z := node.Meta[ZoneMeta]; z != "" {
			zones[node.Node] = z
		}
	}
	return n, zones, nil
}

func (c *Consul) backOff() backoff.BackOff {
	if c.NewBackOff != nil {
		return c.NewBackOff()
	}
	return watch.DefaultRetry()
}

// Disabled reads node's disabled mark: its own, else the one its Python rebootmgr's config
// gives it (see PythonDisabled), read together.
func (c *Consul) Disabled(ctx context.Context, node string) (place.Flag, error) {
	if err := ValidNode(node); err != nil {
		return place.Flag{}, err
	}
	pairs, err := c.getAll(ctx, c.disabledKeys(node))
	if err != nil {
		return place.Flag{}, err
	}
	return c.disabledIn(node, pairs), nil
}

// disabledKeys are the keys that say whether node is disabled (see disabledIn).
func (c *Consul) disabledKeys(node string) []string {
	return []string{c.Keys.Disabled(node), c.Keys.PythonConfig(node)}
}

// disabledIn is node's disabled mark in pairs, read with its disabledKeys: its own, else the one
// its Python rebootmgr's config gives it.
func (c *Consul) disabledIn(node string, pairs map[string]*api.KVPair) place.Flag {
	if f := flagOf(pairs[c.Keys.Disabled(node)]); f.Set {
		return f
	}
	return c.pythonDisabledFlag(node, pairs[c.Keys.PythonConfig(node)])
}

// SetDisabled marks node disabled, keeping a mark (and its reason) that is already there. A
// long reason, such as a task's output, is cut (see package clip).
func (c *Consul) SetDisabled(ctx context.Context, node, reason string) error {
	if err := ValidNode(node); err != nil {
		return err
	}
	key := c.Keys.Disabled(node)
	_, err := c.cas(ctx, &api.KVPair{Key: key, Value: []byte(clip.Text(reason))}, "write key "+key)
	return err
}

// Trigger reads node's reboot request.
func (c *Consul) Trigger(ctx context.Context, node string) (place.Flag, error) {
	if err := ValidNode(node); err != nil {
		return place.Flag{}, err
	}
	return c.Flag(ctx, c.Keys.RebootRequired(node))
}

// DeleteTrigger deletes node's reboot request if it is unchanged since index.
func (c *Consul) DeleteTrigger(ctx context.Context, node string, index uint64) (bool, error) {
	if err := ValidNode(node); err != nil {
		return false, err
	}
	key := c.Keys.RebootRequired(node)
	return c.deleteCAS(ctx, &api.KVPair{Key: key, ModifyIndex: index}, "delete key "+key)
}

// Lock reads the lock record; a record that cannot be read is an error, never "free".
func (c *Consul) Lock(ctx context.Context) (lock.Record, uint64, error) {
	key := c.Keys.GroupLock(c.Group)
	pair, err := c.get(ctx, key, "read reboot lock "+key)
	if err != nil {
		return lock.Record{}, 0, err
	}
	if pair == nil {
		return lock.Record{Version: lock.Version}, 0, nil
	}
	rec, err := lock.Decode(pair.Value)
	if err != nil {
		return lock.Record{}, 0, fmt.Errorf("reboot lock %s: %w (fix or delete the key by hand after checking which nodes are rebooting)", key, err)
	}
	return rec, pair.ModifyIndex, nil
}
