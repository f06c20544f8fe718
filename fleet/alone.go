package fleet

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rebootmgr/rebootmgr/health"
)

// Where a node reboots alone: under a limit of auto, a node with no rule over the fleet, and
// under a limit per zone, a node of no zone (see pipeline.Alone and lock.Record.ZoneError).

// alone is the lock gate's evidence of why the node reboots alone, where it does (see Alone).
func alone(s NodeState) []string {
	if why := Alone(s); why != "" {
		return []string{"this node reboots alone, nobody beside it: " + why}
	}
	return nil
}

// Alone says why the node reboots only alone, nobody holding a place beside it ("" where it
// does not): under auto it runs no service with a rule over the fleet (none tagged rebootmgr,
// or only local_only ones, which count its own instance only), and under a limit per zone it has
// no zone, a zone of its own.
func Alone(s NodeState) string {
	var why []string
	if s.Limit.Auto && !s.Health.FleetRuled() {
		why = append(why, fmt.Sprintf("the limit is auto and it runs no service with a rule over the fleet (none tagged %s, or only local_only ones)", health.Tag))
	}
	if s.Limit.PerZone > 0 && s.Zone == "" {
		why = append(why, "the limit is per zone and it has no zone (node meta rebootmgr-zone): a zone of its own")
	}
	return strings.Join(why, "; ")
}

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
