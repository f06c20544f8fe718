package fleetlock

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/store"
)

// A host's id names it in the lock, the fleet's holders, the queue and the history, as a
// node's name names a node, and the daemon of a node reads its own entries by its name. These
// are the rules that keep a host and a node apart: a host takes no place under the name of a
// node that rebootmgr's daemon reboots, and its entries say that a FleetLock request took them
// (see lock.Holder.FleetLock), so that a daemon never takes them for its own.

// mayAsk refuses a pre-reboot that may not ask for a place at all, before the lock is read: an
// id too long (see MaxHostID), a group no operator made (see known), or an id that is the name
// of a node rebootmgr's daemon reboots.
func (l *Locks) mayAsk(ctx context.Context, st *store.Consul, host, group string) error {
	if len(host) > MaxHostID {
		return &Refusal{Kind: KindBadRequest, Value: fmt.Sprintf("client_params.id is %d characters long: an id that asks for a place here is at most %d (Zincati's is 32)", len(host), MaxHostID)}
	}
	if err := known(ctx, st, group); err != nil {
		return err
	}
	return l.notANode(ctx, host)
}

// notANode refuses host when Consul's catalog has a node of that name that runs rebootmgr's
// daemon (its service store.DaemonService is registered there, running or not): that node's
// reboots are its daemon's, and a host of the same name would be taken for it (its daemon
// reading the host's entry as its own reboot, its min reboot interval the host's reboots). A
// node without the daemon is a host's own Consul agent, by which it is judged (see hostHealth).
func (l *Locks) notANode(ctx context.Context, host string) error {
	n, _, err := l.Client.Catalog().Node(host, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("look up node %s in consul: %w", host, err)
	}
	if n == nil || n.Node == nil {
		return nil
	}
	for _, svc := range n.Services {
		if svc.Service == store.DaemonService {
			return &Refusal{Kind: KindIDInUse, Value: fmt.Sprintf("%s is the name of a node that rebootmgr's daemon reboots: a FleetLock host takes no place under it (give the host an id no such node has)", host)}
		}
	}
	return nil
}
