package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// RewriteTrigger writes node's reboot request with value if it is unchanged since index, and
// returns the ModifyIndex of the write, as the transaction answers it (a read after the write
// could see someone else's): 0 when the request changed or is gone. The value is cut (see
// package clip).
func (c *Consul) RewriteTrigger(ctx context.Context, node string, index uint64, value string) (uint64, error) {
	if err := ValidNode(node); err != nil {
		return 0, err
	}
	if index == 0 {
		return 0, errors.New("rewrite a reboot request: no index to check it against")
	}
	key := c.Keys.RebootRequired(node)
	ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: []byte(clip.Text(value)), Index: index}}}
	ok, resp, _, err := c.Client.Txn().Txn(ops, c.writeQuery(ctx))
	switch {
	case err != nil:
		return 0, fmt.Errorf("write key %s: %w", key, classify(err))
	case !ok && resp != nil && len(resp.Errors) > 0 && conflict(resp.Errors[0].What):
		return 0, nil
	case !ok:
		return 0, fmt.Errorf("write key %s: %w", key, classify(txnErrors(resp)))
	case len(resp.Results) != 1 || resp.Results[0].KV == nil || resp.Results[0].KV.ModifyIndex == 0:
		return 0, fmt.Errorf("write key %s: the transaction did not say the index it wrote", key)
	}
	return resp.Results[0].KV.ModifyIndex, nil
}

// AskAgain writes value as node's reboot request in place of existing when a reboot under way
// took it: its value is marked taken (see pipeline.Untaken), or the node's entry of the lock,
// past preparing, recorded its index (as a rebootmgr before the take did). The end of that
// reboot keeps the request written here. false, nothing written, when existing still asks;
// ErrConflict when it changed since it was read.
func (c *Consul) AskAgain(ctx context.Context, node, value string, existing place.Flag) (bool, error) {
	if err := ValidNode(node); err != nil {
		return false, err
	}
	taken, err := c.requestTaken(ctx, node, existing)
	if err != nil || !taken {
		return false, err
	}
	index, err := c.RewriteTrigger(ctx, node, existing.Index, value)
	if err != nil {
		return false, err
	}
	if index == 0 {
		return false, fmt.Errorf("%s: %w", c.Keys.RebootRequired(node), ErrConflict)
	}
	return true, nil
}

// requestTaken says whether a reboot under way took node's request existing.
func (c *Consul) requestTaken(ctx context.Context, node string, existing place.Flag) (bool, error) {
	if _, marked := pipeline.Untaken(existing.Value); marked {
		return true, nil
	}
	key := c.Keys.Holders()
	pair, err := c.get(ctx, key, "read the fleet's lock holders "+key)
	if err != nil || pair == nil {
		return false, err
	}
	fleet, err := lock.DecodeFleet(pair.Value)
	if err != nil {
		return false, fmt.Errorf("fleet's lock holders %s: %w", key, err)
	}
	group, held := fleet.Group(node)
	if !held {
		return false, nil
	}
	rec, _, err := c.ForGroup(group).Lock(ctx)
	if err != nil {
		return false, err
	}
	h, ok := rec.Holder(node)
	return ok && h.Phase != lock.Preparing && h.TriggerIndex == existing.Index, nil
}
