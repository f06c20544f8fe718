package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Members reads the nodes remembered running service, in one consistent request.
func (c *Consul) Members(ctx context.Context, service string) ([]string, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	prefix := c.Keys.MembersPrefix() + service + "/"
	q := c.Options
	q.RequireConsistent, q.AllowStale = true, false
	keys, meta, err := c.Client.KV().Keys(prefix, "", q.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read members of %s (%s): %w", service, prefix, err)
	}
	if meta.ResultsFilteredByACLs {
		return nil, fmt.Errorf("read members of %s (%s): %w", service, prefix, ErrFiltered)
	}
	nodes := make([]string, 0, len(keys))
	for _, k := range keys {
		seg := strings.TrimPrefix(k, prefix)
		if seg == "" || strings.Contains(seg, "/") {
			continue
		}
		node, err := url.PathUnescape(seg)
		if err != nil {
			return nil, fmt.Errorf("read members of %s: key %s: %w", service, k, err)
		}
		nodes = append(nodes, node)
	}
	c.mu.Lock()
	if c.known == nil {
		c.known = map[string]map[string]bool{}
	}
	c.known[service] = setOf(nodes)
	c.mu.Unlock()
	return nodes, nil
}

func setOf(nodes []string) map[string]bool {
	out := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		out[n] = true
	}
	return out
}

// Remember writes down nodes as members of service. What the store knows it remembers is not
// written again, but what it knows can be out of date: an operator may have forgotten a node
// since (rebootmgr forget, another process). So the members are read again, and what the store
// knows replaced, whenever nodes holds one that the last call for the service did not (a node
// new to the catalog, or back in it after it left): a node forgotten while it was gone is
// remembered again when it comes back. A caller that passes the same nodes every time, as the
// health watch does, costs one read when they change and no request otherwise; one that lost
// sight of the service (a failed read) passes none, so that the next nodes it passes are read
// against the members again. Every read of the members (a health read's) refreshes what the
// store knows too.
func (c *Consul) Remember(ctx context.Context, service string, nodes []string) error {
	if err := ValidService(service); err != nil {
		return err
	}
	c.mu.Lock()
	if len(nodes) == 0 {
		// Nothing to write down; whatever comes next is new.
		delete(c.passed, service)
		c.mu.Unlock()
		return nil
	}
	known := maps.Clone(c.known[service])
	fresh := known == nil
	for _, node := range nodes {
		if !c.passed[service][node] {
			fresh = true
		}
	}
	if c.passed == nil {
		c.passed = map[string]map[string]bool{}
	}
	c.passed[service] = setOf(nodes)
	c.mu.Unlock()
	if fresh {
		members, err := c.Members(ctx, service)
		if err != nil {
			return err
		}
		known = setOf(members)
	}
	var written []string
	for _, node := range nodes {
		if known[node] || node == "" {
			continue
		}
		key := c.Keys.Member(service, node)
		value := "first seen " + time.Now().UTC().Format(time.RFC3339)
		if _, _, err := c.Client.KV().CAS(&api.KVPair{Key: key, Value: []byte(value)}, c.write(ctx)); err != nil {
			return fmt.Errorf("remember %s as a member of %s (%s): %w", node, service, key, err)
		}
		written = append(written, node)
	}
	if len(written) > 0 {
		c.mu.Lock()
		if c.known == nil {
			c.known = map[string]map[string]bool{}
		}
		if c.known[service] == nil {
			c.known[service] = map[string]bool{}
		}
		for _, n := range written {
			c.known[service][n] = true
		}
		c.mu.Unlock()
	}
	return nil
}

// ErrStillRegistered means a node to forget still has an instance of the service in Consul's
// catalog: its checks count for it, and a node forgotten while it is there would never be
// remembered again by the daemons that saw it already.
var ErrStillRegistered = errors.New("still in Consul's catalog")

// Forget removes node from the members of service, or of every service when service is "";
// it returns the services it was forgotten from. A node that still has an instance of one of
// them in the catalog is forgotten from none (ErrStillRegistered).
func (c *Consul) Forget(ctx context.Context, node, service string) ([]string, error) {
	if node == "" {
		return nil, fmt.Errorf("empty node name")
	}
	services := []string{service}
	if service == "" {
		keys, _, err := c.Client.KV().Keys(c.Keys.MembersPrefix(), "", c.query(ctx))
		if err != nil {
			return nil, fmt.Errorf("read members (%s): %w", c.Keys.MembersPrefix(), err)
		}
		services = nil
		for _, k := range keys {
			svc, seg, ok := strings.Cut(strings.TrimPrefix(k, c.Keys.MembersPrefix()), "/")
			if ok && seg == memberSegment(node) {
				services = append(services, svc)
			}
		}
	} else if err := ValidService(service); err != nil {
		return nil, err
	}
	if err := c.checkDeregistered(ctx, node, services); err != nil {
		return nil, err
	}
	var forgotten []string
	for _, svc := range services {
		f, err := c.Remove(ctx, c.Keys.Member(svc, node))
		if err != nil {
			return forgotten, err
		}
		if f.Set {
			forgotten = append(forgotten, svc)
		}
	}
	return forgotten, nil
}

// checkDeregistered fails with ErrStillRegistered when node has an instance of one of services
// in the catalog, as one consistent read sees it.
func (c *Consul) checkDeregistered(ctx context.Context, node string, services []string) error {
	q := c.Options
	q.RequireConsistent, q.AllowStale = true, false
	entry, meta, err := c.Client.Catalog().Node(node, q.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("read services of node %s from consul: %w", node, err)
	}
	if meta.ResultsFilteredByACLs {
		return fmt.Errorf("read services of node %s from consul: %w", node, ErrFiltered)
	}
	if entry == nil {
		return nil
	}
	var there []string
	for _, svc := range entry.Services {
		if slices.Contains(services, svc.Service) && !slices.Contains(there, svc.Service) {
			there = append(there, svc.Service)
		}
	}
	if len(there) == 0 {
		return nil
	}
	slices.Sort(there)
	return fmt.Errorf("%s runs %s and is %w: its checks count for it; forget it once it is gone (it left, or an operator ran consul force-leave %s)",
		node, strings.Join(there, ", "), ErrStillRegistered, node)
}

// MemberOf reads the services node is remembered running, in one consistent request.
func (c *Consul) MemberOf(ctx context.Context, node string) ([]string, error) {
	prefix := c.Keys.MembersPrefix()
	q := c.Options
	q.RequireConsistent, q.AllowStale = true, false
	keys, meta, err := c.Client.KV().Keys(prefix, "", q.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read the services %s is remembered running (%s): %w", node, prefix, err)
	}
	if meta.ResultsFilteredByACLs {
		return nil, fmt.Errorf("read the services %s is remembered running (%s): %w", node, prefix, ErrFiltered)
	}
	seg := memberSegment(node)
	var out []string
	for _, k := range keys {
		service, member, ok := strings.Cut(strings.TrimPrefix(k, prefix), "/")
		if ok && service != "" && member == seg {
			out = append(out, service)
		}
	}
	slices.Sort(out)
	return out, nil
}
