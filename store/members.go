package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
	keys, bad, err := c.listMembers(ctx, prefix, reading{what: fmt.Sprintf("read members of %s (%s)", service, prefix)})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		// A member not read would be a member not counted: never fewer members.
		return nil, fmt.Errorf("read members of %s: key %s: not a member's key as rebootmgr writes it", service, bad[0])
	}
	nodes := make([]string, 0, len(keys))
	for _, k := range keys {
		nodes = append(nodes, k.Node)
	}
	c.mu.Lock()
	if c.known == nil {
		c.known = map[string]map[string]bool{}
	}
	c.known[service] = setOf(nodes)
	c.mu.Unlock()
	return nodes, nil
}

// listMembers reads the members' keys under prefix (a service's, or every service's) into what
// they are; bad are the keys of one member's place (members/<service>/<node>) that cannot be
// read so (a node's name escaped otherwise than Keys.Member escapes it).
func (c *Consul) listMembers(ctx context.Context, prefix string, r reading) (members []Key, bad []string, err error) {
	keys, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) ([]string, *api.QueryMeta, error) {
		return c.Client.KV().Keys(prefix, "", q)
	})
	if err != nil {
		return nil, nil, err
	}
	for _, k := range keys {
		key, ok := c.Keys.Parse(k)
		if ok && key.Kind == KindMember {
			members = append(members, key)
			continue
		}
		service, node, one := strings.Cut(strings.TrimPrefix(k, c.Keys.MembersPrefix()), "/")
		if one && service != "" && node != "" && !strings.Contains(node, "/") {
			bad = append(bad, k)
		}
	}
	return members, bad, nil
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
	var missing []string
	for _, node := range nodes {
		if !known[node] && node != "" {
			missing = append(missing, node)
		}
	}
	return c.writeMembers(ctx, service, missing)
}

// writeMembers writes nodes down as members of service: each key created only where there is
// none (an operator's forget, or a key another node wrote meanwhile, is never overwritten), in
// transactions of as many creations as Consul takes. A daemon that starts beside a thousand
// others, or judges its health before they have remembered themselves, writes the members it
// does not know in a request for every 64 of them, not one for each.
func (c *Consul) writeMembers(ctx context.Context, service string, nodes []string) error {
	for start := 0; start < len(nodes); start += maxTxnOps {
		chunk := nodes[start:min(start+maxTxnOps, len(nodes))]
		if err := c.createMembers(ctx, service, chunk); err != nil {
			return err
		}
		c.mu.Lock()
		if c.known == nil {
			c.known = map[string]map[string]bool{}
		}
		if c.known[service] == nil {
			c.known[service] = map[string]bool{}
		}
		for _, n := range chunk {
			c.known[service][n] = true
		}
		c.mu.Unlock()
	}
	return nil
}

// createMembers creates the member keys of nodes (at most maxTxnOps) in one transaction; keys
// that exist by then are left as they are, and the others created in another.
func (c *Consul) createMembers(ctx context.Context, service string, nodes []string) error {
	value := []byte("first seen " + c.now().UTC().Format(time.RFC3339))
	for len(nodes) > 0 {
		ops := make(api.TxnOps, len(nodes))
		for i, node := range nodes {
			ops[i] = &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: c.Keys.Member(service, node), Value: value}}
		}
		what := fmt.Sprintf("remember %s as members of %s", strings.Join(nodes, ", "), service)
		if len(nodes) == 1 {
			what = fmt.Sprintf("remember %s as a member of %s (%s)", nodes[0], service, ops[0].KV.Key)
		}
		ok, resp, _, err := c.Client.Txn().Txn(ops, c.writeQuery(ctx))
		if err != nil {
			return fmt.Errorf("%s: %w", what, classify(err))
		}
		if ok {
			return nil
		}
		there := map[int]bool{}
		for _, e := range resp.Errors {
			if !conflict(e.What) || e.OpIndex < 0 || e.OpIndex >= len(nodes) {
				return fmt.Errorf("%s: %w", what, classify(txnErrors(resp)))
			}
			there[e.OpIndex] = true
		}
		var rest []string
		for i, node := range nodes {
			if !there[i] {
				rest = append(rest, node)
			}
		}
		nodes = rest
	}
	return nil
}

// RememberSelf writes node down as a member of each of services: the services it runs, as its
// own catalog entry lists them. It costs one read of their keys, whatever their number, and a
// write for each that is absent: at the node's first start, or after a forget while the node
// was out of the catalog (see Forget). A daemon calls it at every read of its node's services,
// so that a node running a daemon is remembered as soon as it runs, and again as soon as it
// runs a service once more after it was forgotten.
func (c *Consul) RememberSelf(ctx context.Context, node string, services []string) error {
	if len(services) == 0 {
		return nil
	}
	keys := make([]string, len(services))
	for i, svc := range services {
		if err := ValidService(svc); err != nil {
			return err
		}
		keys[i] = c.Keys.Member(svc, node)
	}
	have, err := c.getAll(ctx, keys)
	if err != nil {
		return fmt.Errorf("read whether %s is remembered as a member of %s: %w", node, strings.Join(services, ", "), err)
	}
	for i, svc := range services {
		if have[keys[i]] != nil {
			continue
		}
		value := "first seen " + c.now().UTC().Format(time.RFC3339)
		if _, err := c.cas(ctx, &api.KVPair{Key: keys[i], Value: []byte(value)}, fmt.Sprintf("remember %s as a member of %s (%s)", node, svc, keys[i])); err != nil {
			return err
		}
		c.mu.Lock()
		if c.known[svc] != nil {
			c.known[svc][node] = true
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
		var err error
		if services, err = c.memberOf(ctx, node, fmt.Sprintf("read members (%s)", c.Keys.MembersPrefix())); err != nil {
			return nil, err
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
	r := reading{what: fmt.Sprintf("read services of node %s from consul", node)}
	entry, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) (*api.CatalogNode, *api.QueryMeta, error) {
		return c.Client.Catalog().Node(node, q)
	})
	if err != nil {
		return err
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
	return c.memberOf(ctx, node, fmt.Sprintf("read the services %s is remembered running (%s)", node, c.Keys.MembersPrefix()))
}

// memberOf is MemberOf, its read named what.
func (c *Consul) memberOf(ctx context.Context, node, what string) ([]string, error) {
	keys, _, err := c.listMembers(ctx, c.Keys.MembersPrefix(), reading{what: what})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		if k.Node == node {
			out = append(out, k.Service)
		}
	}
	slices.Sort(out)
	return out, nil
}
