package fleet

import (
	"slices"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
)

// Where a node reboots alone: under a limit of auto, a node with no rule over the fleet, and
// under a limit per zone, a node of no zone (see place.Alone and lock.Record.ZoneError).

// Alone says why the node reboots only alone, nobody holding a place beside it ("" where it
// does not): see gate.Alone.
func Alone(s NodeState) string { return gate.Alone(s.Limit, s.Health, s.Zone) }

// ruleLess are the holders of the groups' locks that run no service with a rule over the
// fleet, judged as store.Health.Ruled judges them: by the tags of their instances the catalog
// lists (byNode), or, for a node the catalog does not list, by those of the first instance
// tagged rebootmgr of each service it is remembered running.
func (s Snapshot) ruleLess(byNode map[string][]health.Service) map[string]bool {
	out := map[string]bool{}
	for _, g := range s.Groups {
		for _, h := range g.Lock.Holders {
			out[h.Node] = !s.ruled(h.Node, byNode[h.Node])
		}
	}
	return out
}

// ruled says whether node runs a service with a rule over the fleet (see ruleLess).
func (s Snapshot) ruled(node string, services []health.Service) bool {
	if _, known := s.Nodes[node]; known {
		return slices.ContainsFunc(services, func(svc health.Service) bool { return health.FleetRule(svc.Tags) })
	}
	for _, svc := range s.Services {
		if !slices.Contains(s.Members[svc.Name], node) {
			continue
		}
		i := slices.IndexFunc(svc.Instances, func(inst health.Instance) bool { return slices.Contains(inst.Tags, health.Tag) })
		if i >= 0 && health.FleetRule(svc.Instances[i].Tags) {
			return true
		}
	}
	return false
}
