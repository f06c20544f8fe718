package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/cas"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
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
}

// View reads the group's lock record and limit, the fleet's record and the Python
// rebootmgr's keys in one consistent transaction. A session lock held on a Python lock key, or
// a Python marker that rebootmgr did not write, is a Python holder (View.Legacy).
func (c *Consul) View(ctx context.Context) (pipeline.View, error) {
	stopKey, groupStopKey, pyStopKey := c.Keys.Stop(), c.Keys.GroupStop(c.Group), c.Keys.PythonGroupStop(c.Group)
	legacy := c.Keys.LegacyKeys(c.Group)
	keys := append([]string{c.Keys.GroupLock(c.Group), c.Keys.GroupLimit(c.Group), c.Keys.Holders(), stopKey, groupStopKey, pyStopKey,
		c.Keys.GroupQueue(c.Group), c.Keys.Claims()}, legacy...)
	pairs, err := c.getAll(ctx, keys)
	if err != nil {
		return pipeline.View{}, err
	}
	v := pipeline.View{Group: groupName(c.Group), Legacy: map[string]string{}}
	state := &viewState{index: map[string]uint64{}, markers: map[string]string{}}
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
		return pipeline.View{}, err
	}
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
// lock record, limit and queue, the fleet's holders and claims. A record that cannot be read
// is an error, never an empty one.
func (c *Consul) viewRecords(ctx context.Context, v *pipeline.View, pairs map[string]*api.KVPair) error {
	lockKey, fleetKey, queueKey, claimsKey := c.Keys.GroupLock(c.Group), c.Keys.Holders(), c.Keys.GroupQueue(c.Group), c.Keys.Claims()
	v.Lock, v.Fleet, v.Queue = lock.Record{Version: lock.Version}, lock.Fleet{Version: lock.Version}, lock.Queue{Version: lock.Version}
	var err error
	if p := pairs[lockKey]; p != nil {
		if v.Lock, err = lock.Decode(p.Value); err != nil {
			return fmt.Errorf("reboot lock %s: %w (fix or delete the key by hand after checking which nodes are rebooting)", lockKey, err)
		}
	}
	if err := c.viewLimit(ctx, v, pairs[c.Keys.GroupLimit(c.Group)]); err != nil {
		return err
	}
	if p := pairs[queueKey]; p != nil {
		if v.Queue, err = lock.DecodeQueue(p.Value); err != nil {
			return fmt.Errorf("group's queue %s: %w (delete the key: it only orders the nodes waiting)", queueKey, err)
		}
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
func (c *Consul) viewLimit(ctx context.Context, v *pipeline.View, p *api.KVPair) error {
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
	ops := make(api.TxnOps, len(keys))
	for i, key := range keys {
		ops[i] = &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: key}}
	}
	resp, _, err := read(ctx, c.Options, reading{what: "read keys " + strings.Join(keys, ", ")}, func(q *api.QueryOptions) (*api.TxnResponse, *api.QueryMeta, error) {
		ok, resp, meta, err := c.Client.Txn().Txn(ops, q)
		switch {
		case err != nil:
			return nil, meta, err
		case !ok:
			return nil, meta, txnErrors(resp)
		case len(resp.Results) != len(keys):
			return nil, meta, ErrFiltered
		}
		return resp, meta, nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*api.KVPair, len(keys))
	for _, r := range resp.Results {
		if r.KV != nil && r.KV.ModifyIndex != 0 {
			out[r.KV.Key] = r.KV
		}
	}
	return out, nil
}

// Commit writes ch in one transaction if nothing v holds changed since it was read (see
// pipeline.Change); false, and nothing written, when something did. The Python rebootmgr's
// markers go in the same transaction (see markerOps); with PythonMarkers, so does a check that
// none of its keys changed since v, so that a Python node that took its lock after v was read
// fails the write.
func (c *Consul) Commit(ctx context.Context, v pipeline.View, ch pipeline.Change) (bool, error) {
	state, ok := v.Version.(*viewState)
	if !ok {
		return false, errors.New("commit: the view was not read from this store")
	}
	lockKey, fleetKey, queueKey := c.Keys.GroupLock(c.Group), c.Keys.Holders(), c.Keys.GroupQueue(c.Group)
	// A lock or queue the change leaves as it is is checked, not written (a write would wake
	// every node watching it).
	lockOp, err := checkOrCAS(lockKey, state.index[lockKey], ch.Lock.Equal(v.Lock), len(ch.Lock.Holders) == 0, ch.Lock.Encode)
	if err != nil {
		return false, err
	}
	ops := api.TxnOps{lockOp}
	if ch.Queue != nil {
		queueOp, err := checkOrCAS(queueKey, state.index[queueKey], ch.Queue.Equal(v.Queue), len(ch.Queue.Entries) == 0, ch.Queue.Encode)
		if err != nil {
			return false, err
		}
		ops = append(ops, queueOp)
	}
	if ch.Limit != nil {
		limitKey := c.Keys.GroupLimit(c.Group)
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: limitKey, Value: []byte(ch.Limit.String()), Index: state.index[limitKey]}})
	}
	fleet := v.Fleet
	if ch.Fleet != nil {
		fleet = *ch.Fleet
		fleetOp, err := casOp(fleetKey, state.index[fleetKey], len(ch.Fleet.Holders) == 0, ch.Fleet.Encode)
		if err != nil {
			return false, err
		}
		ops = append(ops, fleetOp)
	}
	written := map[string]bool{}
	for _, op := range c.markerOps(state, ch.Lock, fleet) {
		written[op.KV.Key] = true
		ops = append(ops, op)
	}
	if c.PythonMarkers {
		for _, key := range c.Keys.LegacyKeys(c.Group) {
			if !written[key] {
				ops = append(ops, unchanged(key, state.index[key]))
			}
		}
	}
	// The nodes the change brings to the front of the queue are told in the same transaction
	// (see pipeline.Woken). A policy from before the turn keys denies that: the change is written
	// alone, and those nodes see their place at their next tick.
	if wakes := c.wakeOps(pipeline.Woken(v, ch), len(ops)); len(wakes) > 0 {
		ok, err := c.txn(ctx, append(slices.Clip(ops), wakes...))
		if err == nil || !denied(err) {
			return ok, err
		}
		if c.Logger != nil {
			c.Logger.Warn("could not tell the nodes next in the group's queue that a place opened (the ACL policy does not let this node write their turn keys): they see it at their next tick",
				logkey.Err, err)
		}
	}
	return c.txn(ctx, ops)
}

// wakeOps write the turn key of each node woken (TurnValue), within what one transaction takes
// beside the change's used ops. A name Consul would clean into another key is never woken there.
func (c *Consul) wakeOps(wakes []pipeline.Wake, used int) api.TxnOps {
	now := time.Now()
	var ops api.TxnOps
	for _, w := range wakes {
		if key := c.Keys.GroupTurn(c.Group, w.Node); CheckKey(key) == nil && used+len(ops) < maxTxnOps {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: []byte(TurnValue(w, now))}})
		}
	}
	return ops
}

// TurnValue is what a turn key holds: "place" when a place opened for the node, "look" when
// only a holder's deadline changed; then when.
func TurnValue(w pipeline.Wake, now time.Time) string {
	why := "look"
	if w.Place {
		why = "place"
	}
	return why + " " + now.UTC().Format(time.RFC3339Nano)
}

// TurnIsPlace says whether a turn key's value tells of a place opened (see TurnValue).
func TurnIsPlace(value []byte) bool { return strings.HasPrefix(string(value), "place ") }

// denied says whether a write failed for want of ACL permission.
func denied(err error) bool { return errors.Is(err, ErrDenied) }

// maxTxnOps is the most operations Consul takes in one transaction.
const maxTxnOps = 64

// markerOps keeps the Python rebootmgr's markers as the change leaves the locks, so that a
// Python node sees a reboot of rebootmgr in progress and waits: the fleet-wide marker names
// every holder of the fleet (a Python node of no group waits for all of them, as rebootmgr
// waits for it whatever its group), the group's marker every holder of the group's lock. A
// marker is written (with check-and-set) while there is a holder it stands for, with
// PythonMarkers; one of rebootmgr's own is kept up to date while there is, with or without,
// and deleted with the last holder. A marker the Python rebootmgr wrote is never touched.
func (c *Consul) markerOps(state *viewState, rec lock.Record, fleet lock.Fleet) []*api.TxnOp {
	group := make([]string, 0, len(rec.Holders))
	for _, h := range rec.Holders {
		group = append(group, h.Node)
	}
	var ops []*api.TxnOp
	for _, m := range []struct {
		key     string
		holders []string
	}{{c.Keys.LegacyMarker(), fleet.Nodes()}, {c.Keys.LegacyGroupMarker(c.Group), group}} {
		index := state.index[m.key]
		current, ours := state.markers[m.key]
		if index != 0 && !ours {
			continue
		}
		switch {
		case len(m.holders) > 0 && (ours || c.PythonMarkers):
			if value := MarkerValue(m.holders); value != current {
				ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: m.key, Value: []byte(value), Index: index}})
			}
		case ours:
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: m.key, Index: index}})
		}
	}
	return ops
}

// checkOrCAS checks that key is still at index when same (the change leaves it as read), and
// else writes it as casOp does.
func checkOrCAS(key string, index uint64, same, empty bool, encode func() ([]byte, error)) (*api.TxnOp, error) {
	if same {
		return unchanged(key, index), nil
	}
	return casOp(key, index, empty, encode)
}

// casOp writes key with check-and-set at index (0: only if absent), or deletes it when empty.
func casOp(key string, index uint64, empty bool, encode func() ([]byte, error)) (*api.TxnOp, error) {
	if empty {
		if index == 0 {
			return unchanged(key, 0), nil
		}
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: key, Index: index}}, nil
	}
	data, err := encode()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", key, err)
	}
	return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: data, Index: index}}, nil
}

// unchanged checks that key is still at index (0: still absent).
func unchanged(key string, index uint64) *api.TxnOp {
	if index == 0 {
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key}}
	}
	return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: index}}
}

// txn runs a writing transaction: true when it was applied, false when one of its checks
// failed (something changed: nothing was written), an error when Consul refused it.
func (c *Consul) txn(ctx context.Context, ops api.TxnOps) (bool, error) {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.KV.Key
	}
	ok, resp, _, err := c.Client.Txn().Txn(ops, c.writeQuery(ctx))
	if err != nil {
		return false, fmt.Errorf("write keys %s: %w", strings.Join(names, ", "), classify(err))
	}
	if ok {
		return true, nil
	}
	for _, e := range resp.Errors {
		if !conflict(e.What) {
			return false, fmt.Errorf("write keys %s: %w", strings.Join(names, ", "), classify(txnErrors(resp)))
		}
	}
	return false, nil
}

// writeQuery is the query options of a writing transaction (its token and datacenter).
func (c *Consul) writeQuery(ctx context.Context) *api.QueryOptions {
	q := api.QueryOptions{Datacenter: c.Options.Datacenter, Token: c.Options.Token}
	return q.WithContext(ctx)
}

// conflict says whether a transaction error is a check that failed because a key changed.
func conflict(what string) bool {
	for _, s := range []string{"index is stale", "current modify index", "doesn't exist", "\" exists"} {
		if strings.Contains(what, s) {
			return true
		}
	}
	return false
}

func txnErrors(resp *api.TxnResponse) error {
	if resp == nil || len(resp.Errors) == 0 {
		return errors.New("transaction failed without saying why")
	}
	msgs := make([]string, len(resp.Errors))
	for i, e := range resp.Errors {
		msgs[i] = e.What
	}
	return errors.New(strings.Join(msgs, "; "))
}
