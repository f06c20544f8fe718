package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// Commit writes ch in one transaction if nothing v holds changed since it was read (see
// place.Change): the group's lock, queue and limit, the fleet's record; false, and nothing
// written, when something did. The Python rebootmgr's
// markers go in the same transaction (see markerOps); with PythonMarkers, so does a check that
// none of its keys changed since v, so that a Python node that took its lock after v was read
// fails the write. The queue is written as lock.PlanQueue says: a node joining it creates its
// own ask, and checks the lock and the queue's record as read; a write of the record folds asks
// into it. A change that may wake a node that joined after v was read reads the asks in the same
// transaction, and tells those nodes once it is written (see place.WokenLate).
func (c *Consul) Commit(ctx context.Context, v place.View, ch place.Change) (bool, error) {
	state, ok := v.Version.(*viewState)
	if !ok {
		return false, errors.New("commit: the view was not read from this store")
	}
	if v.Partial {
		return false, fmt.Errorf("commit: %w", place.ErrPartial)
	}
	ops, err := c.changeOps(state, v, ch)
	if err != nil {
		return false, err
	}
	// The nodes the change brings to the front of the queue are told in the same transaction
	// (see place.Woken). A policy from before the turn keys denies that, and one from before the
	// asks denies those: the change is written without them (the queue's record alone, see
	// lock.RecordOnly), and those nodes see their place at their next tick.
	woken := place.Woken(v, ch)
	withAsks := false // whether the write wrote asks
	var read api.TxnResults
	write := func(asks, tell, late bool) (bool, error) {
		all := slices.Clip(ops)
		if late {
			all = append(all, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: c.Keys.GroupAsks(c.Group)}})
		}
		if ch.Queue != nil {
			w, err := c.queueWrite(state, *ch.Queue, len(all), len(woken), asks)
			if err != nil {
				return false, err
			}
			withAsks = w.Ops() > 0
			qops, err := c.queueOps(state, w, *ch.Queue)
			if err != nil {
				return false, err
			}
			all = append(all, qops...)
		}
		if tell {
			all = append(all, c.wakeOps(woken, len(all))...)
		}
		ok, results, err := c.txnResults(ctx, all)
		read = results
		return ok, err
	}
	wakes := len(c.wakeOps(woken, 0)) > 0
	asks, tell, late := true, wakes, place.MayWakeLate(v, ch)
	for {
		ok, err := write(asks, tell, late)
		switch {
		case err == nil && wakes && !tell:
			return ok, untold(ok)
		case err == nil && ok && late:
			c.tellLate(ctx, v, ch, state, read)
			return ok, nil
		case err == nil || !denied(err):
			return ok, err
		case withAsks:
			c.logger().Warn("could not write the group's asks (the ACL policy does not let this node write them): the queue is written whole into its record instead, as far as its bound allows, and an ask of a node that left waits for a node that may delete it",
				logkey.Err, err)
			asks = false
		case tell:
			c.logger().Warn("could not tell the nodes next in the group's queue that a place opened (the ACL policy does not let this node write their turn keys): they see it at their next tick",
				logkey.Err, err)
			asks, tell = true, false
		default:
			return ok, err
		}
	}
}

// tellLate tells the nodes that joined the group's queue while ch was judged (their asks among
// those the write of ch read, and not among v's) what ch calls for (see place.WokenLate): their
// joins were judged on the lock as v holds it, and ch on a queue without them. A wake that cannot
// be written is logged: those nodes see their place at their next tick. Nobody follows them (see
// place.WokeEntries): they joined a moment ago.
func (c *Consul) tellLate(ctx context.Context, v place.View, ch place.Change, state *viewState, read api.TxnResults) {
	// The get-tree's results are the asks with their values: Consul blanks the value of every
	// other operation's.
	var pairs []*api.KVPair
	for _, r := range read {
		if r.KV != nil && r.KV.Value != nil && strings.HasPrefix(r.KV.Key, c.Keys.GroupAsks(c.Group)) {
			pairs = append(pairs, r.KV)
		}
	}
	asks, err := c.Keys.DecodeAsks(c.Group, pairs)
	var late []lock.Ask
	for _, a := range asks {
		if !slices.ContainsFunc(state.asks, func(b lock.Ask) bool { return b.Entry.Node == a.Entry.Node && b.Created == a.Created }) {
			late = append(late, a)
		}
	}
	if ops := c.wakeOps(place.WokenLate(v, ch, lock.Merged(lock.Queue{}, late).Entries), 0); len(ops) > 0 && err == nil {
		_, err = c.txn(ctx, ops)
	}
	if err != nil {
		c.logger().Warn("could not tell the nodes that joined the group's queue while a change was written what it opened for them: they see it at their next tick",
			logkey.Err, err)
	}
}

// untold is a change written without the wakes it called for: place.ErrUntold once written.
func untold(ok bool) error {
	if ok {
		return place.ErrUntold
	}
	return nil
}

// changeOps are the operations of ch but its queue and wakes: the group's lock (written, or
// checked when ch leaves it as it is: a write would wake every node watching it), the limit
// the change was judged by, the fleet's record, the Python rebootmgr's markers and keys.
func (c *Consul) changeOps(state *viewState, v place.View, ch place.Change) (api.TxnOps, error) {
	lockKey, fleetKey := c.Keys.GroupLock(c.Group), c.Keys.Holders()
	lockOp, err := checkOrCAS(lockKey, state.index[lockKey], ch.Lock.Equal(v.Lock), len(ch.Lock.Holders) == 0, ch.Lock.Encode)
	if err != nil {
		return nil, err
	}
	ops := api.TxnOps{lockOp}
	// The limit the change was judged by is the one in force when it is written: a limit
	// changed between the read and the write fails the write, which is judged again. (A limit
	// read absent is not checked: every limit set allows a place at least, as the default does,
	// and a check that a key is absent needs the right to write it, which a daemon lacks.)
	limitKey := c.Keys.GroupLimit(c.Group)
	switch index := state.index[limitKey]; {
	case ch.Limit != nil:
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: limitKey, Value: []byte(ch.Limit.String()), Index: index}})
	case index != 0:
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: limitKey, Index: index}})
	}
	fleet := v.Fleet
	if ch.Fleet != nil {
		fleet = *ch.Fleet
		fleetOp, err := casOp(fleetKey, state.index[fleetKey], len(ch.Fleet.Holders) == 0, ch.Fleet.Encode)
		if err != nil {
			return nil, err
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
	return ops, nil
}

// wakeOps write the turn key of each node woken (TurnValue), within what one transaction takes
// beside the change's used ops. A name Consul would clean into another key is never woken there.
func (c *Consul) wakeOps(wakes []place.Wake, used int) api.TxnOps {
	now := c.now()
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
func TurnValue(w place.Wake, now time.Time) string {
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
	ok, _, err := c.txnResults(ctx, ops)
	return ok, err
}

// txnResults is txn, with the results of the transaction when it was applied.
func (c *Consul) txnResults(ctx context.Context, ops api.TxnOps) (bool, api.TxnResults, error) {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.KV.Key
	}
	ok, resp, _, err := c.Client.Txn().Txn(ops, c.writeQuery(ctx))
	if err != nil {
		return false, nil, fmt.Errorf("write keys %s: %w", strings.Join(names, ", "), classify(err))
	}
	if ok {
		return true, resp.Results, nil
	}
	for _, e := range resp.Errors {
		if !conflict(e.What) {
			return false, nil, fmt.Errorf("write keys %s: %w", strings.Join(names, ", "), classify(txnErrors(resp)))
		}
	}
	return false, nil, nil
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
