package store

import (
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
)

// DecodeAsks are the asks of group's queue among pairs (see lock.Ask; any other pair is left
// out). An ask that cannot be read, or that names another node than its key, is an error naming
// its key, as an unreadable record is.
func (k Keys) DecodeAsks(group string, pairs []*api.KVPair) ([]lock.Ask, error) {
	var out []lock.Ask
	for _, p := range pairs {
		key, ok := k.Parse(p.Key)
		if !ok || key.Kind != KindAsk || key.Group != groupName(group) {
			continue
		}
		e, err := lock.DecodeAsk(p.Value)
		if err == nil && e.Node != key.Node {
			err = fmt.Errorf("it names node %q", e.Node)
		}
		if err != nil {
			return nil, fmt.Errorf("ask of the group's queue %s: %w (delete the key: it only orders the nodes waiting)", p.Key, err)
		}
		out = append(out, lock.Ask{Entry: e, Created: p.CreateIndex, Index: p.ModifyIndex})
	}
	return out, nil
}

// DecodeGroupQueue is group's queue as read (see lock.Merged) from its record's pair (nil when
// absent) and the pairs under its asks' prefix (see Keys.GroupAsks): what every reader of the
// queue shows.
func (k Keys) DecodeGroupQueue(group string, record *api.KVPair, asks []*api.KVPair) (lock.Queue, error) {
	rec, err := k.decodeQueueRecord(record)
	if err != nil {
		return lock.Queue{}, err
	}
	a, err := k.DecodeAsks(group, asks)
	if err != nil {
		return lock.Queue{}, err
	}
	return lock.Merged(rec, a), nil
}

// decodeQueueRecord is the queue's record a pair holds (empty when nil).
func (k Keys) decodeQueueRecord(p *api.KVPair) (lock.Queue, error) {
	if p == nil {
		return lock.Queue{Version: lock.Version}, nil
	}
	q, err := lock.DecodeQueue(p.Value)
	if err != nil {
		return lock.Queue{}, fmt.Errorf("group's queue %s: %w (delete the key: it only orders the nodes waiting)", p.Key, err)
	}
	return q, nil
}

// errQueueFull is a node joining a queue whose record has no room for it, written by a token
// that may not write the asks.
var errQueueFull = errors.New("the group's queue record is full, and this token may not write the group's asks (see deploy/acl): the node waits outside the queue")

// wakeReserve is how many operations of a transaction a change keeps for the turn keys of the
// nodes it wakes before it folds asks into the queue's record.
const wakeReserve = 32

// queueWrite is how ch's queue, want, is written against state: with the asks (see
// lock.PlanQueue), within what a transaction takes beside used operations and wakes turn keys;
// or, without them (a token from before the asks: see lock.RecordOnly), the record alone.
func (c *Consul) queueWrite(state *viewState, want lock.Queue, used, wakes int, asks bool) (lock.QueueWrite, error) {
	if !asks {
		w, ok := lock.RecordOnly(state.queue, state.asks, want)
		if !ok {
			return lock.QueueWrite{}, fmt.Errorf("%s: %w", c.Keys.GroupQueue(c.Group), errQueueFull)
		}
		return w, nil
	}
	budget := maxTxnOps - used - 1 - min(wakes, wakeReserve)
	return lock.PlanQueue(state.queue, state.asks, want, budget), nil
}

// queueOps are the operations that write w (want, as planned): the record written, or checked
// as read, and the asks created, rewritten, folded in (checked, then deleted) and deleted.
func (c *Consul) queueOps(state *viewState, w lock.QueueWrite, want lock.Queue) (api.TxnOps, error) {
	key := c.Keys.GroupQueue(c.Group)
	op := unchanged(key, state.index[key])
	if w.Record != nil {
		var err error
		if op, err = casOp(key, state.index[key], len(want.Entries) == 0, w.Record.Encode); err != nil {
			return nil, err
		}
	}
	ops := api.TxnOps{op}
	kv := func(verb api.KVOp, node string, index uint64, value []byte) {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: verb, Key: c.Keys.GroupAsk(c.Group, node), Index: index, Value: value}})
	}
	if e := w.Create; e != nil {
		data, err := lock.EncodeAsk(*e)
		if err != nil {
			return nil, fmt.Errorf("encode the ask of %s: %w", e.Node, err)
		}
		kv(api.KVCAS, e.Node, 0, data)
	}
	for _, a := range w.Rewrite {
		data, err := lock.EncodeAsk(a.Entry)
		if err != nil {
			return nil, fmt.Errorf("encode the ask of %s: %w", a.Entry.Node, err)
		}
		kv(api.KVCAS, a.Entry.Node, a.Index, data)
	}
	// An ask folded in is checked first: Consul's delete-cas of a key already gone succeeds,
	// and the record must not take back a node that left meanwhile.
	for _, a := range w.Fold {
		kv(api.KVCheckIndex, a.Entry.Node, a.Index, nil)
		kv(api.KVDeleteCAS, a.Entry.Node, a.Index, nil)
	}
	for _, a := range w.Drop {
		kv(api.KVDeleteCAS, a.Entry.Node, a.Index, nil)
	}
	for _, o := range ops {
		if err := CheckKey(o.KV.Key); err != nil {
			return nil, err
		}
	}
	return ops, nil
}
