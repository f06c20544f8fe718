// Package watch turns Consul blocking queries (and, for the daemon, file changes and a tick)
// into events that say "look again". A blocking query returning is no proof of change, so
// every event carries the state as it is now.
package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
)

// DefaultWait is how long one blocking query waits for a change.
const DefaultWait = 5 * time.Minute

// minQueryInterval is the least time between two queries that did not see the index
// advance, so that a misbehaving index cannot make a hot loop.
const minQueryInterval = 100 * time.Millisecond

// IndexRule applies Consul's blocking-query index rules to the index a query returned, given
// the one it waited on. It returns the index to wait on next and whether the result may differ
// from the last one: the same index means the wait timed out; an index that went backwards
// (a snapshot restore, a new leader with a different history) resets to 0; an index of 0 is
// never waited on.
func IndexRule(waited, returned uint64) (next uint64, changed bool) {
	switch {
	case returned == 0:
		return 1, true
	case returned < waited:
		return 0, true
	case returned == waited:
		return waited, false
	default:
		return returned, true
	}
}

// Key watches one KV key with blocking queries.
type Key struct {
	KV  *api.KV
	Key string
	// Wait is how long one query blocks (DefaultWait when zero).
	Wait time.Duration
	// Options are applied to every query (datacenter, token).
	Options api.QueryOptions

	index    uint64
	last     *api.KVPair
	seen     bool
	lastCall time.Time
}

// Next returns the key's current value (nil when absent). The first call returns at once;
// later calls block until the key may have changed, and return only when its value, its
// existence or its ModifyIndex did.
func (w *Key) Next(ctx context.Context) (*api.KVPair, error) {
	for {
		if err := w.pace(ctx); err != nil {
			return nil, err
		}
		q := w.Options
		q.WaitIndex = w.index
		q.WaitTime = w.Wait
		if q.WaitTime == 0 {
			q.WaitTime = DefaultWait
		}
		pair, meta, err := w.KV.Get(w.Key, q.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("watch key %s: %w", w.Key, err)
		}
		next, changed := IndexRule(w.index, meta.LastIndex)
		w.index = next
		if !changed && w.seen {
			continue
		}
		if w.seen && samePair(w.last, pair) {
			continue
		}
		w.seen = true
		w.last = pair
		return pair, nil
	}
}

func (w *Key) pace(ctx context.Context) error {
	wait := minQueryInterval - time.Since(w.lastCall)
	if w.lastCall.IsZero() || wait <= 0 {
		w.lastCall = time.Now()
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		w.lastCall = time.Now()
		return nil
	}
}

func samePair(a, b *api.KVPair) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ModifyIndex == b.ModifyIndex && string(a.Value) == string(b.Value)
}
