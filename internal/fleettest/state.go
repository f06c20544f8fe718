package fleettest

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// State is rebootmgr's locks as one consistent read saw them.
type State struct {
	// Fleet is the fleet's record of the nodes holding a place in any group's lock.
	Fleet lock.Fleet
	// Locks are the groups' lock records, Limits their limits (1 when unset).
	Locks  map[string]lock.Record
	Limits map[string]lock.Limit
	// Stop says whether the fleet's stop flag is set; GroupStops are the groups' stop flags set,
	// with their reasons.
	Stop       bool
	GroupStops map[string]string
	// Queues are the groups' queues; Claims the fleet's claims of room.
	Queues map[string]lock.Queue
	Claims lock.Claims
	// Requested are the nodes whose reboot_required key exists; Disabled those disabled.
	Requested, Disabled map[string]bool
}

// waitTimeout bounds every wait of the harness on Consul.
const waitTimeout = 30 * time.Second

// State reads the fleet's record, every group's lock record, limit and queue (its record and
// asks), the stop flag and every node's reboot request in one consistent transaction through the
// server's agent, trying again while Consul has no leader (after the server was restarted).
func (f *Fleet) State() State {
	t := f.t
	t.Helper()
	keys := store.Keys{Prefix: store.DefaultPrefix}
	groups := f.Groups()
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.Holders()}},
		{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.Stop()}},
		{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.Claims()}},
	}
	for group := range groups {
		ops = append(ops,
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.GroupLock(group)}},
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.GroupLimit(group)}},
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.GroupStop(group)}},
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.GroupQueue(group)}},
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: keys.GroupAsks(group)}})
	}
	for _, n := range f.Nodes {
		ops = append(ops,
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.RebootRequired(n.Name)}},
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: keys.Disabled(n.Name)}})
	}
	var resp *api.TxnResponse
	f.retry("read the locks", func() error {
		ok, r, _, err := f.Nodes[0].Agent.Client.Txn().Txn(ops, &api.QueryOptions{RequireConsistent: true})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("transaction failed: %+v", r.Errors)
		}
		resp = r
		return nil
	})
	pairs := map[string]*api.KVPair{}
	var asks []*api.KVPair
	for _, r := range resp.Results {
		if r.KV != nil && r.KV.ModifyIndex != 0 {
			pairs[r.KV.Key] = r.KV
			asks = append(asks, r.KV)
		}
	}
	s := State{Fleet: lock.Fleet{Holders: map[string]string{}}, Locks: map[string]lock.Record{}, Limits: map[string]lock.Limit{},
		GroupStops: map[string]string{}, Queues: map[string]lock.Queue{}, Requested: map[string]bool{}, Disabled: map[string]bool{}}
	for _, n := range f.Nodes {
		s.Requested[n.Name] = pairs[keys.RebootRequired(n.Name)] != nil
		s.Disabled[n.Name] = pairs[keys.Disabled(n.Name)] != nil
	}
	var err error
	if p := pairs[keys.Claims()]; p != nil {
		if s.Claims, err = lock.DecodeClaims(p.Value); err != nil {
			t.Fatalf("claims %s: %v", keys.Claims(), err)
		}
	}
	if p := pairs[keys.Holders()]; p != nil {
		if s.Fleet, err = lock.DecodeFleet(p.Value); err != nil {
			t.Fatalf("fleet's record %s: %v", keys.Holders(), err)
		}
	}
	s.Stop = pairs[keys.Stop()] != nil
	for group := range groups {
		f.groupState(&s, keys, pairs, group, asks)
	}
	return s
}

// groupState fills in s the lock record, stop flag, queue (its record and asks, among all) and
// limit of group (1 when unset) from the pairs State read, failing the test on a record it
// cannot decode.
func (f *Fleet) groupState(s *State, keys store.Keys, pairs map[string]*api.KVPair, group string, all []*api.KVPair) {
	t := f.t
	t.Helper()
	var err error
	if p := pairs[keys.GroupLock(group)]; p != nil {
		if s.Locks[group], err = lock.Decode(p.Value); err != nil {
			t.Fatalf("lock record of group %s: %v", group, err)
		}
	}
	if p := pairs[keys.GroupStop(group)]; p != nil {
		s.GroupStops[group] = string(p.Value)
	}
	if s.Queues[group], err = keys.DecodeGroupQueue(group, pairs[keys.GroupQueue(group)], all); err != nil {
		t.Fatalf("queue of group %s: %v", group, err)
	}
	s.Limits[group] = lock.One
	if p := pairs[keys.GroupLimit(group)]; p != nil {
		if s.Limits[group], err = lock.ParseLimit(string(p.Value)); err != nil {
			t.Fatalf("limit of group %s: %v", group, err)
		}
	}
}

// retry runs do until it succeeds, failing the test after waitTimeout: for reads that fail
// while Consul elects a leader.
func (f *Fleet) retry(what string, do func() error) {
	t := f.t
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := do()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// WaitGone waits, with blocking queries on the server, until node is no longer in the catalog
// (it left cleanly), and returns when it saw it gone; an error only when ctx ends first. The
// leader deregisters a node that left when it hears of the leave, or at its next reconcile (up
// to a minute later) when it missed it, as it may after a restart.
func (f *Fleet) WaitGone(ctx context.Context, node string) (time.Time, error) {
	var index uint64
	for {
		entry, meta, err := f.Nodes[0].Agent.Client.Catalog().Node(node, (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second, RequireConsistent: true}).WithContext(ctx))
		switch {
		case ctx.Err() != nil:
			return time.Time{}, fmt.Errorf("wait for %s to leave the catalog: %w", node, context.Cause(ctx))
		case err != nil:
			// The server is restarting: ask again.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		case entry == nil || entry.Node == nil:
			return time.Now(), nil
		default:
			index = meta.LastIndex
		}
	}
}

// WaitMember waits, with blocking queries, until node is remembered as a member of service
// (rebootmgr's members/<service>/<node> key exists), and says whether it is within timeout.
func (f *Fleet) WaitMember(service, node string, timeout time.Duration) bool {
	t := f.t
	t.Helper()
	key := store.Keys{Prefix: store.DefaultPrefix}.Member(service, node)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var index uint64
	for {
		pair, meta, err := f.Nodes[0].Agent.Client.KV().Get(key, (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx))
		switch {
		case err == nil && pair != nil:
			return true
		case ctx.Err() != nil:
			return false
		case err == nil:
			index = meta.LastIndex
		default:
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}
