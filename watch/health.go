package watch

import (
	"fmt"
	"net/url"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
)

// TTLRerun is how long a TTL check is given to report again. Consul does not publish a
// check's TTL in its catalog, so rebootmgr assumes the longest wait it allows (see Settle).
const TTLRerun = 3 * time.Minute

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

// Instances reads all instances of a service in the cluster with their checks, in one request
// made with q: the health gate's read (consistent) and the health watch's (blocking) alike.
func Instances(client *api.Client, service string, q *api.QueryOptions) ([]health.Instance, *api.QueryMeta, error) {
	var entries []serviceEntry
	meta, err := client.Raw().Query("/v1/health/service/"+url.PathEscape(service), &entries, q)
	if err != nil {
		return nil, nil, err
	}
	out := make([]health.Instance, 0, len(entries))
	for _, e := range entries {
		inst := health.Instance{Node: e.Node.Node, ServiceID: e.Service.ID, Tags: e.Service.Tags}
		for _, ch := range e.Checks {
			check := health.Check{Node: ch.Node, CheckID: ch.CheckID, Name: ch.Name, Status: ch.Status, Output: ch.Output, Type: ch.Type}
			var err error
			if check.Interval, err = parseDuration(ch.Interval); err != nil {
				return nil, nil, fmt.Errorf("service %s check %s on %s: interval: %w", service, ch.CheckID, ch.Node, err)
			}
			if check.Timeout, err = parseDuration(ch.Timeout); err != nil {
				return nil, nil, fmt.Errorf("service %s check %s on %s: timeout: %w", service, ch.CheckID, ch.Node, err)
			}
			if ch.Type == "ttl" {
				check.TTL = TTLRerun
			}
			inst.Checks = append(inst.Checks, check)
		}
		out = append(out, inst)
	}
	return out, meta, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
