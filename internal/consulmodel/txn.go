package consulmodel

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hashicorp/consul/api"
)

// txnSizeURL is where Consul's 413 of a transaction points.
const txnSizeURL = "https://www.consul.io/docs/agent/config/config-files#txn_max_req_len"

// maxTxnOps is the most operations Consul 1.20 takes in one transaction (its HTTP handler's
// limit; older releases took 64).
const maxTxnOps = 128

// txnWrite says whether a KV verb changes state.
func txnWrite(v api.KVOp) bool {
	switch v {
	case api.KVSet, api.KVDelete, api.KVDeleteCAS, api.KVDeleteTree, api.KVCAS, api.KVLock, api.KVUnlock:
		return true
	}
	return false
}

// txnReadResponse is what Consul answers a transaction of reads: the results with the query's
// meta.
type txnReadResponse struct {
	Results               api.TxnResults
	Errors                api.TxnErrors
	Index                 uint64
	LastContact           int64
	KnownLeader           bool
	ConsistencyLevel      string
	NotModified           bool
	Backend               int
	ResultsFilteredByACLs bool
}

// txnRoute serves /v1/txn with its KV verbs. A transaction of reads only is answered at once
// (with the leader's headers, no index); one with a write is applied whole or, when an
// operation fails, not at all: 409 with every failure. Node, service, check and session
// operations are not modelled (refused with 500).
func (m *Model) txnRoute(c *Call) (endpoint, *reply) {
	if c.Method != http.MethodPut {
		return endpoint{}, nil
	}
	if len(c.Body) > MaxValueSize {
		r := textReply(http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body(%d bytes) too large, max size: %d bytes. See %s.", len(c.Body), MaxValueSize, txnSizeURL))
		return endpoint{}, &r
	}
	var ops api.TxnOps
	if err := json.Unmarshal(c.Body, &ops); err != nil {
		return endpoint{}, badRequest("Failed to parse body: %v", err)
	}
	if len(ops) > maxTxnOps {
		r := textReply(http.StatusRequestEntityTooLarge, fmt.Sprintf("Transaction contains too many operations (%d > %d)", len(ops), maxTxnOps))
		return endpoint{}, &r
	}
	writes := false
	for _, op := range ops {
		if op.KV == nil {
			r := textReply(http.StatusInternalServerError, "consulmodel: only KV operations are modelled in a transaction")
			return endpoint{}, &r
		}
		if len(op.KV.Value) > MaxValueSize {
			r := textReply(http.StatusRequestEntityTooLarge, fmt.Sprintf("Value for key %q is too large (%d > %d bytes)", op.KV.Key, len(op.KV.Value), MaxValueSize))
			return endpoint{}, &r
		}
		writes = writes || txnWrite(op.KV.Verb)
	}
	if !writes {
		return endpoint{read: func() reply {
			results, errs := m.runTxn(ops, 0, nil)
			r := jsonReply(txnReadResponse{Results: results, Errors: errs, KnownLeader: true})
			if len(errs) > 0 {
				r.status = http.StatusConflict
			}
			r.leaderOnly = true
			return r
		}}, nil
	}
	return endpoint{write: true, apply: func(ch *changes) reply {
		results, errs := m.runTxn(ops, m.next(), ch)
		if len(errs) > 0 {
			r := jsonReply(api.TxnResponse{Errors: errs})
			r.status = http.StatusConflict
			return r
		}
		return jsonReply(api.TxnResponse{Results: results})
	}}, nil
}

// runTxn runs ops at idx (ch nil: reads only): every operation runs, on the state the ones
// before left; when one failed, every change is taken back and the failures are returned.
func (m *Model) runTxn(ops api.TxnOps, idx uint64, ch *changes) (api.TxnResults, api.TxnErrors) {
	var undo []func()
	m.kv.undo = &undo
	defer func() { m.kv.undo = nil }()
	var results api.TxnResults
	var errs api.TxnErrors
	var changed []string
	for i, op := range ops {
		res, keys, err := m.txnOp(op.KV, idx)
		if err != nil {
			errs = append(errs, &api.TxnError{OpIndex: i, What: err.Error()})
			continue
		}
		results = append(results, res...)
		changed = append(changed, keys...)
	}
	if len(errs) > 0 {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, errs
	}
	if ch != nil {
		for _, k := range changed {
			ch.key(k)
		}
	}
	return results, nil
}

func kvResult(e *entry, withValue bool) api.TxnResults {
	return api.TxnResults{{KV: e.pair(withValue)}}
}

// txnOp runs one KV operation: its results, the keys it changed, or why it failed (Consul's
// words: store.conflict reads them).
func (m *Model) txnOp(op *api.KVTxnOp, idx uint64) (api.TxnResults, []string, error) {
	k := op.Key
	if k == "" && op.Verb != api.KVDeleteTree {
		return nil, nil, fmt.Errorf("Must provide key")
	}
	value := op.Value
	switch op.Verb {
	case api.KVSet:
		e, changed := m.kv.set(k, value, op.Flags, idx)
		return kvResult(e, false), changedKeys(changed, k), nil
	case api.KVCAS:
		e, ok, changed := m.kv.cas(k, value, op.Flags, op.Index, idx)
		if !ok {
			return nil, nil, fmt.Errorf("failed to set key %q, index is stale", k)
		}
		return kvResult(e, false), changedKeys(changed, k), nil
	case api.KVDelete:
		return nil, changedKeys(m.kv.remove(k, idx), k), nil
	case api.KVDeleteCAS:
		ok, changed := m.kv.deleteCAS(k, op.Index, idx)
		if !ok {
			return nil, nil, fmt.Errorf("failed to delete key %q, index is stale", k)
		}
		return nil, changedKeys(changed, k), nil
	case api.KVDeleteTree:
		return nil, m.kv.deleteTree(k, idx), nil
	case api.KVLock, api.KVUnlock:
		return m.txnLock(op, idx)
	case api.KVGet, api.KVGetOrEmpty, api.KVGetTree, api.KVCheckSession, api.KVCheckIndex, api.KVCheckNotExists:
		return m.txnRead(op)
	}
	return nil, nil, fmt.Errorf("unknown KV verb %q", op.Verb)
}

// txnRead runs one KV operation that reads or checks and changes nothing: its results, or why it
// failed (Consul's words, as txnOp's).
func (m *Model) txnRead(op *api.KVTxnOp) (api.TxnResults, []string, error) {
	k := op.Key
	switch op.Verb {
	case api.KVGet, api.KVGetOrEmpty:
		e := m.kv.get(k)
		if e == nil {
			if op.Verb == api.KVGet {
				return nil, nil, fmt.Errorf("key %q doesn't exist", k)
			}
			e = &entry{key: k, flags: op.Flags, session: op.Session, modifyIndex: op.Index}
		}
		return kvResult(e, true), nil, nil
	case api.KVGetTree:
		entries, _ := m.kv.list(k)
		out := make(api.TxnResults, len(entries))
		for i, e := range entries {
			out[i] = &api.TxnResult{KV: e.pair(true)}
		}
		return out, nil, nil
	case api.KVCheckSession, api.KVCheckIndex:
		e := m.kv.get(k)
		switch {
		case e == nil && op.Verb == api.KVCheckIndex:
			return nil, nil, fmt.Errorf("failed to check index, key %q doesn't exist", k)
		case e == nil:
			return nil, nil, fmt.Errorf("failed to check session, key %q doesn't exist", k)
		case op.Verb == api.KVCheckIndex && e.modifyIndex != op.Index:
			return nil, nil, fmt.Errorf("failed index check for key %q, current modify index %d != %d", k, e.modifyIndex, op.Index)
		case op.Verb == api.KVCheckSession && e.session != op.Session:
			return nil, nil, fmt.Errorf("failed session check for key %q, current session %q != %q", k, e.session, op.Session)
		}
		return kvResult(e, false), nil, nil
	case api.KVCheckNotExists:
		if m.kv.get(k) != nil {
			return nil, nil, fmt.Errorf("key %q exists", k)
		}
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("unknown KV verb %q", op.Verb)
}

func (m *Model) txnLock(op *api.KVTxnOp, idx uint64) (api.TxnResults, []string, error) {
	k := op.Key
	if op.Session == "" {
		return nil, nil, fmt.Errorf("missing session")
	}
	if op.Verb == api.KVUnlock {
		e, ok := m.kv.unlock(k, op.Value, op.Flags, op.Session, idx)
		if !ok {
			return nil, nil, fmt.Errorf("failed to unlock key %q, lock isn't held, or is held by another session", k)
		}
		return kvResult(e, false), []string{k}, nil
	}
	if m.sessions.byID[op.Session] == nil {
		return nil, nil, fmt.Errorf("invalid session %q", op.Session)
	}
	e, ok := m.kv.lock(k, op.Value, op.Flags, op.Session, idx)
	if !ok {
		return nil, nil, fmt.Errorf("failed to lock key %q, lock is already held", k)
	}
	return kvResult(e, false), []string{k}, nil
}

func changedKeys(changed bool, k string) []string {
	if changed {
		return []string{k}
	}
	return nil
}
