package health

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/consul/api"
)

// ttlRerun is how long a TTL check is given to report again. Consul does not publish a
// check's TTL in its catalog, so rebootmgr assumes the longest wait it allows (see Settle).
const ttlRerun = 3 * time.Minute

// Consul reads the services a node's reboot depends on from Consul's catalog: one request for
// the node's services, then one per service tagged "rebootmgr" for all its instances.
type Consul struct {
	Client *api.Client
	// Options are applied to every query (datacenter, consistency, token).
	Options api.QueryOptions
}

// Check reads and evaluates the health of node's services.
func (c Consul) Check(ctx context.Context, node string) (Report, error) {
	services, err := c.Services(ctx, node)
	if err != nil {
		return Report{}, err
	}
	return Evaluate(node, services), nil
}

// Services returns node's services tagged "rebootmgr" with all their instances.
func (c Consul) Services(ctx context.Context, node string) ([]Service, error) {
	q := c.Options
	catalogNode, _, err := c.Client.Catalog().Node(node, q.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read services of node %s from consul: %w", node, err)
	}
	if catalogNode == nil || catalogNode.Node == nil {
		return nil, fmt.Errorf("node %s is not in consul's catalog", node)
	}
	tags := map[string][]string{}
	for _, svc := range catalogNode.Services {
		if !slices.Contains(svc.Tags, Tag) {
			continue
		}
		for _, t := range svc.Tags {
			if !slices.Contains(tags[svc.Service], t) {
				tags[svc.Service] = append(tags[svc.Service], t)
			}
		}
	}
	names := make([]string, 0, len(tags))
	for name := range tags {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Service, 0, len(names))
	for _, name := range names {
		instances, err := c.Instances(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Service{Name: name, Tags: tags[name], Instances: instances})
	}
	return out, nil
}

// serviceEntry is the part of /v1/health/service/:name that rebootmgr reads.
type serviceEntry struct {
	Node    struct{ Node string }
	Service struct {
		ID   string
		Tags []string
	}
	Checks []struct {
		Node     string
		CheckID  string
		Name     string
		Status   string
		Output   string
		Type     string
		Interval string
		Timeout  string
	}
}

// Instances reads all instances of a service in the cluster with their checks, in one request.
func (c Consul) Instances(ctx context.Context, service string) ([]Instance, error) {
	var entries []serviceEntry
	q := c.Options
	if _, err := c.Client.Raw().Query("/v1/health/service/"+url.PathEscape(service), &entries, q.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("read health of service %s from consul: %w", service, err)
	}
	out := make([]Instance, 0, len(entries))
	for _, e := range entries {
		inst := Instance{Node: e.Node.Node, ServiceID: e.Service.ID, Tags: e.Service.Tags}
		for _, ch := range e.Checks {
			check := Check{Node: ch.Node, CheckID: ch.CheckID, Name: ch.Name, Status: ch.Status, Output: ch.Output, Type: ch.Type}
			var err error
			if check.Interval, err = parseDuration(ch.Interval); err != nil {
				return nil, fmt.Errorf("service %s check %s on %s: interval: %w", service, ch.CheckID, ch.Node, err)
			}
			if check.Timeout, err = parseDuration(ch.Timeout); err != nil {
				return nil, fmt.Errorf("service %s check %s on %s: timeout: %w", service, ch.CheckID, ch.Node, err)
			}
			if ch.Type == "ttl" {
				check.TTL = ttlRerun
			}
			inst.Checks = append(inst.Checks, check)
		}
		out = append(out, inst)
	}
	return out, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
