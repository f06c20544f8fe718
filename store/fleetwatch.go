package store

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/watch"
)

// FleetChanges calls changed whenever what FleetSnapshot reads may have changed, from blocking
// queries (no polling): the keys under the prefix, the catalog's nodes (their group, zone and
// maintenance) and the state of every health check (the services tagged rebootmgr and the
// daemons). A query that fails is tried again with backoff, and its recovery calls changed
// too; it returns when ctx ends, or with the error of a query that gives up.
func (c *Consul) FleetChanges(ctx context.Context, changed func()) error {
	queries := map[string]func(q *api.QueryOptions) (string, uint64, error){
		"keys under " + c.Keys.Prefix: func(q *api.QueryOptions) (string, uint64, error) {
			pairs, meta, err := c.Client.KV().List(c.Keys.at(""), q)
			if err != nil {
				return "", 0, err
			}
			var fp strings.Builder
			for _, p := range pairs {
				fmt.Fprintf(&fp, "%s@%d;", p.Key, p.ModifyIndex)
			}
			return fp.String(), meta.LastIndex, nil
		},
		"catalog nodes": func(q *api.QueryOptions) (string, uint64, error) {
			nodes, meta, err := c.Client.Catalog().Nodes(q)
			if err != nil {
				return "", 0, err
			}
			var fp strings.Builder
			for _, n := range nodes {
				fmt.Fprintf(&fp, "%s@%d;", n.Node, n.ModifyIndex)
			}
			return fp.String(), meta.LastIndex, nil
		},
		"health checks": func(q *api.QueryOptions) (string, uint64, error) {
			checks, meta, err := c.Client.Health().State(api.HealthAny, q)
			if err != nil {
				return "", 0, err
			}
			var fp strings.Builder
			for _, ch := range checks {
				fmt.Fprintf(&fp, "%s/%s=%s:%s;", ch.Node, ch.CheckID, ch.Status, ch.Output)
			}
			return fp.String(), meta.LastIndex, nil
		},
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for name, fetch := range queries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.follow(ctx, name, fetch, changed); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil && err != context.Canceled {
		return err
	}
	return nil
}

// follow repeats one blocking query, calling changed at each change after the first answer.
func (c *Consul) follow(ctx context.Context, name string, fetch func(q *api.QueryOptions) (string, uint64, error), changed func()) error {
	w := &watch.Query{Options: c.Options, Fetch: func(_ context.Context, q *api.QueryOptions) (string, uint64, error) { return fetch(q) }}
	first, failed := true, false
	return watch.Retrying(ctx, name, c.Logger, nil, func(ctx context.Context) (bool, error) {
		_, err := w.Next(ctx)
		if err != nil {
			failed = true
			return false, err
		}
		if !first || failed {
			changed()
		}
		first, failed = false, false
		return false, nil
	})
}
