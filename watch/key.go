// Package watch turns Consul blocking queries, file changes and a tick into events that say
// "look again". A blocking query returning is no proof of change, so an event carries the
// state as it is now, never a diff.
package watch

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// DefaultWait is how long one blocking query waits for a change (Consul's own maximum).
const DefaultWait = 10 * time.Minute

// minQueryInterval is the least time between two queries, so that an index that misbehaves
// (or a value that changes all the time) cannot make a hot loop.
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

// Query repeats one blocking query. Fetch runs it with the options given (WaitIndex and
// WaitTime set) and returns a fingerprint of what it read and Consul's index.
type Query struct {
	Fetch func(ctx context.Context, q *api.QueryOptions) (fingerprint string, index uint64, err error)
	// Wait is how long one query blocks (DefaultWait when zero).
	Wait time.Duration
	// Options are applied to every query (datacenter, token).
	Options api.QueryOptions
	// Pause, when set, holds every query but the first while it is held.
	Pause *Pause

	index    uint64
	last     string
	seen     bool
	lastCall time.Time
	// failed says that the last query failed: the next answer is returned at once, changed or
	// not, so that whoever follows the query knows that Consul answers again (and looks again:
	// anything may have changed while it could not see).
	failed bool
}

// Next returns the fingerprint of the current result. The first call returns at once; later
// calls block until the result differs from the one returned before, or until Consul answers
// again after a query failed.
func (w *Query) Next(ctx context.Context) (string, error) {
	for again := false; ; again = true {
		if again {
			// Only a query that saw no change is paced: that is where a misbehaving index
			// would loop.
			if err := w.pace(ctx); err != nil {
				return "", err
			}
		}
		if w.seen {
			if err := w.Pause.Wait(ctx); err != nil {
				return "", err
			}
		}
		w.lastCall = time.Now()
		q := w.Options
		q.WaitIndex = w.index
		if w.failed {
			// Not a blocking query: whether Consul answers again is the news.
			q.WaitIndex = 0
		}
		q.WaitTime = w.Wait
		if q.WaitTime == 0 {
			q.WaitTime = DefaultWait
		}
		fp, index, err := w.Fetch(ctx, q.WithContext(ctx))
		if err != nil {
			w.failed = true
			return "", err
		}
		next, changed := IndexRule(w.index, index)
		w.index = next
		if w.seen && !w.failed && (!changed || fp == w.last) {
			continue
		}
		w.seen, w.last, w.failed = true, fp, false
		return fp, nil
	}
}

func (w *Query) pace(ctx context.Context) error {
	wait := minQueryInterval - time.Since(w.lastCall)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Key watches one KV key.
type Key struct {
	KV      *api.KV
	Key     string
	Wait    time.Duration
	Options api.QueryOptions
	// Pause, when set, holds every query but the first while it is held.
	Pause *Pause

	q    *Query
	pair *api.KVPair
}

// Next returns the key's value (nil when absent): at once on the first call, later when its
// existence, value or ModifyIndex changed.
func (w *Key) Next(ctx context.Context) (*api.KVPair, error) {
	if w.q == nil {
		w.q = &Query{Wait: w.Wait, Options: w.Options, Pause: w.Pause, Fetch: func(ctx context.Context, q *api.QueryOptions) (string, uint64, error) {
			pair, meta, err := w.KV.Get(w.Key, q)
			if err != nil {
				return "", 0, fmt.Errorf("watch key %s: %w", w.Key, err)
			}
			w.pair = pair
			return pairFingerprint(pair), meta.LastIndex, nil
		}}
	}
	if _, err := w.q.Next(ctx); err != nil {
		return nil, err
	}
	return w.pair, nil
}

func pairFingerprint(p *api.KVPair) string {
	if p == nil {
		return "absent"
	}
	return strconv.FormatUint(p.ModifyIndex, 10) + ":" + string(p.Value)
}
