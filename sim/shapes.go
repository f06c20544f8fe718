package sim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rebootmgr/rebootmgr/store"
)

// The fleet's rarer shapes, each chosen by a setting of Config: nodes of no zone, nodes whose
// services are all local_only, FleetLock hosts named as nodes, and a flood of FleetLock ids
// (see flood.go). Each takes a promise of the queue and limits where the fleet's common shape
// never goes.

// localPrefix begins the name of a group's service tagged local_only (see Config.LocalOnlyEvery).
const localPrefix = "local-"

// shape gives node i the rarer shapes cfg asks for: no zone, or a service tagged local_only in
// place of its group's.
func (w *World) shape(i int, n *node) {
	if every := w.cfg.ZonelessEvery; every > 0 && i%every == every-1 {
		n.zone = ""
	}
	if every := w.cfg.LocalOnlyEvery; every > 0 && i%every == every-1 {
		n.services[0] = localPrefix + n.group
	}
}

// tags are the tags of service svc: the shared service's min_passing, a local_only service's
// tag, every group's own service's max_failing.
func (w *World) tags(svc string) []string {
	switch {
	case svc == "shared":
		return []string{"rebootmgr", fmt.Sprintf("min_passing=%d", w.sharedMin())}
	case strings.HasPrefix(svc, localPrefix):
		return []string{"rebootmgr", "local_only"}
	}
	return []string{"rebootmgr", fmt.Sprintf("max_failing=%d", w.cfg.MaxFailing)}
}

// ruleLess says whether n runs no service with a rule over the fleet: none, or local_only ones
// alone (those judge the node's own state).
func ruleLess(n *node) bool {
	return !slices.ContainsFunc(n.services, func(svc string) bool { return !strings.HasPrefix(svc, localPrefix) })
}

// registerDaemon registers rebootmgr's own service on n, as its daemon does at its start, where
// FleetLock hosts are named as nodes (see Config.HostIDsOfNodes): the server knows a node that
// rebootmgr reboots by it. (Elsewhere the daemon's registration is stood in for.)
func (w *World) registerDaemon(n *node) {
	if w.cfg.HostIDsOfNodes && !n.host {
		w.model.AddService(n.name, store.DaemonService, store.DaemonService, nil, 0)
	}
}

// hostID is the id of FleetLock host i: its own, or, with Config.HostIDsOfNodes, the name of
// node i, of the same group (i%Groups), whose daemon is registered. The server refuses such an
// id (id_in_use) for as long as the node is in the catalog, so the host never reboots and
// nothing waits for it; were it granted, the node's daemon would meet an entry of its own name
// in its group's lock.
func (w *World) hostID(i int) string {
	if w.cfg.HostIDsOfNodes && i < len(w.nodes) {
		return w.nodes[i].name
	}
	return fmt.Sprintf("host-%02d", i+1)
}
