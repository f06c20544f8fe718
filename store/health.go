package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/watch"
)

// Health reads the services a node's reboot depends on from Consul's catalog, for package
// health to judge: one request for the node's services (and, with Local, one for those its own
// agent registered), then for each service tagged "rebootmgr" one for all its instances and one
// for its remembered members. Every read is consistent, whatever the agent's
// discovery_max_stale, and results hidden by ACLs are an error, never fewer instances.
type Health struct {
	Client *api.Client
	// Options are applied to every query (datacenter, token).
	Options api.QueryOptions
	// Members remembers the nodes seen running each service (nil: none are remembered).
	Members *Consul
	// Remember writes down the instances seen that Members does not know yet (off: only read,
	// as check, status and dry runs do).
	Remember bool
	// Local says that Client talks to the node's own agent: the services the agent has
	// registered count as the node's too, whether the catalog lists them yet or not. An agent
	// that just started (after a reboot, or after it left the cluster) is in the catalog a
	// moment before its services are; a node judged by the catalog alone then has nothing to
	// check and passes. With Local, each such service is judged, its own instance missing.
	Local bool
	// InOrder reads the services one after the other, in the order of their names, where they
	// are otherwise read side by side: the same requests in the same order at every run, as a
	// simulator that chooses the order of every request needs.
	InOrder bool
}

// ErrNodeUnknown means Consul's catalog has no node of the name asked for.
var ErrNodeUnknown = errors.New("not in consul's catalog")

// Check reads and evaluates the health of node's services; every node in down counts as a
// failing instance.
func (c Health) Check(ctx context.Context, node string, down map[string]string) (health.Report, error) {
	services, err := c.Services(ctx, node)
	if err != nil {
		return health.Report{}, err
	}
	rep := health.Evaluate(node, services, down)
	if !rep.OK() && c.Members != nil {
		c.Members.noteExcused(ctx, &rep)
	}
	return rep, nil
}

// Services returns node's services tagged "rebootmgr" with all their instances.
func (c Health) Services(ctx context.Context, node string) ([]health.Service, error) {
	tags, err := c.catalogTags(ctx, node)
	if err != nil {
		return nil, err
	}
	if c.Local {
		r := reading{what: fmt.Sprintf("read the services registered with the local agent of %s", node)}
		local, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) (map[string]*api.AgentService, *api.QueryMeta, error) {
			var local map[string]*api.AgentService
			meta, err := c.Client.Raw().Query("/v1/agent/services", &local, q)
			return local, meta, err
		})
		if err != nil {
			return nil, err
		}
		for _, svc := range local {
			if t, ok := health.AddTags(tags[svc.Service], svc.Tags); ok {
				tags[svc.Service] = t
			}
		}
	}
	names := make([]string, 0, len(tags))
	for name := range tags {
		names = append(names, name)
	}
	sort.Strings(names)
	// The services are read side by side (a controller runs many), each its instances then its
	// members; any read that fails fails the whole.
	out := make([]health.Service, len(names))
	errs := make([]error, len(names))
	readOne := func(i int) {
		instances, err := c.Instances(ctx, names[i])
		if err == nil {
			var members []string
			if members, err = c.members(ctx, names[i], instances); err == nil {
				out[i] = health.Service{Name: names[i], Tags: tags[names[i]], Instances: instances, Members: members}
			}
		}
		errs[i] = err
	}
	if c.InOrder {
		for i := range names {
			readOne(i)
		}
	} else {
		slots := make(chan struct{}, parallelReads)
		var wg sync.WaitGroup
		for i := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots <- struct{}{}
				defer func() { <-slots }()
				readOne(i)
			}()
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// catalogTags are the tags of node's services tagged "rebootmgr" as Consul's catalog lists
// them, by service.
func (c Health) catalogTags(ctx context.Context, node string) (map[string][]string, error) {
	r := reading{what: fmt.Sprintf("read services of node %s from consul", node)}
	catalogNode, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) (*api.CatalogNode, *api.QueryMeta, error) {
		return c.Client.Catalog().Node(node, q)
	})
	if err != nil {
		return nil, err
	}
	if catalogNode == nil || catalogNode.Node == nil {
		return nil, fmt.Errorf("node %s is %w", node, ErrNodeUnknown)
	}
	tags := map[string][]string{}
	for _, svc := range catalogNode.Services {
		if t, ok := health.AddTags(tags[svc.Service], svc.Tags); ok {
			tags[svc.Service] = t
		}
	}
	return tags, nil
}

// Ruled says whether node runs a service with a rule over the fleet (see health.FleetRule),
// as Consul's catalog lists its services. A node the catalog knows no node of (a client agent
// leaves the cluster at shutdown: a node rebooting) is judged by the services rebootmgr
// remembers it running (see Consul.MemberOf), each by the tags of the first of its instances
// tagged rebootmgr, as the FleetLock server judges a host; with nothing remembered, it has none.
func (c Health) Ruled(ctx context.Context, node string) (bool, error) {
	tags, err := c.catalogTags(ctx, node)
	if err == nil {
		for _, t := range tags {
			if health.FleetRule(t) {
				return true, nil
			}
		}
		return false, nil
	}
	if !errors.Is(err, ErrNodeUnknown) || c.Members == nil {
		return false, err
	}
	remembered, err := c.Members.MemberOf(ctx, node)
	if err != nil {
		return false, err
	}
	for _, name := range remembered {
		instances, err := c.Instances(ctx, name)
		if err != nil {
			return false, err
		}
		for _, inst := range instances {
			if slices.Contains(inst.Tags, health.Tag) {
				if health.FleetRule(inst.Tags) {
					return true, nil
				}
				break
			}
		}
	}
	return false, nil
}

// parallelReads bounds the services whose health one check reads at once.
const parallelReads = 8

// members reads the nodes remembered running service and, with Remember, writes down the
// nodes of instances it does not know yet.
func (c Health) members(ctx context.Context, service string, instances []health.Instance) ([]string, error) {
	if c.Members == nil {
		return nil, nil
	}
	members, err := c.Members.Members(ctx, service)
	if err != nil {
		return nil, err
	}
	known := setOf(members)
	var unknown []string
	for _, inst := range instances {
		if !known[inst.Node] {
			known[inst.Node] = true
			unknown = append(unknown, inst.Node)
		}
	}
	if c.Remember && len(unknown) > 0 {
		// The members were read just now: no need to read them again, as Remember would.
		if err := c.Members.writeMembers(ctx, service, unknown); err != nil {
			return nil, err
		}
	}
	return members, nil
}

// Instances reads all instances of a service in the cluster with their checks, in one
// consistent request; results hidden by ACLs are an error.
func (c Health) Instances(ctx context.Context, service string) ([]health.Instance, error) {
	r := reading{what: fmt.Sprintf("read health of service %s from consul", service)}
	out, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) ([]health.Instance, *api.QueryMeta, error) {
		return watch.Instances(c.Client, service, q)
	})
	return out, err
}
