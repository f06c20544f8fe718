package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
)

var _ fleet.Source = (*Consul)(nil)

// FleetSnapshot reads what Consul holds of the fleet, for status (see fleet.Snapshot), in a
// bounded number of requests however many nodes there are: the fleet's stop flag by itself,
// every key under the prefix in one (each read back into what it is the key of, see
// Keys.Parse), the catalog's nodes in one, its services in one and one per service tagged
// rebootmgr, the daemons in one and the nodes in maintenance in one. Every read is whole:
// results Consul hides from the token are an error, never a fleet that looks all clear.
func (c *Consul) FleetSnapshot(ctx context.Context) (fleet.Snapshot, error) {
	s := fleet.Snapshot{
		Legacy: map[string]string{}, Requests: map[string]fleet.Mark{}, Disabled: map[string]fleet.Mark{}, Groups: map[string]fleet.GroupState{},
		Nodes: map[string]string{}, Members: map[string][]string{}, Daemons: map[string]fleet.Daemon{}, Maintenance: map[string]string{}, Zones: map[string]string{},
		Python: map[string]string{},
	}
	for _, read := range []func(context.Context, *fleet.Snapshot) error{c.snapshotKeys, c.snapshotNodes, c.snapshotServices, c.snapshotDaemons} {
		if err := read(ctx, &s); err != nil {
			return fleet.Snapshot{}, err
		}
	}
	return s, nil
}

// snapshotKeys reads every key under the prefix into s. The Python rebootmgr's marks (a node's
// config, a group's stop flag) are taken in last: each holds as rebootmgr's own where that is
// not set.
func (c *Consul) snapshotKeys(ctx context.Context, s *fleet.Snapshot) error {
	// The fleet's stop flag is read by itself too: a token that may not read it gets an error
	// naming the key, where a list would leave it out without a word.
	if _, err := c.get(ctx, c.Keys.Stop(), "read the stop flag "+c.Keys.Stop()); err != nil {
		return err
	}
	prefix := c.Keys.at("")
	r := reading{what: "read keys under " + c.Keys.Prefix, needs: fmt.Sprintf("key_prefix %q read", prefix)}
	pairs, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
		return c.Client.KV().List(prefix, q)
	})
	if err != nil {
		return err
	}
	var python []*api.KVPair
	queues := map[string][]*api.KVPair{} // a group's queue record and asks
	for _, p := range pairs {
		k, ok := c.Keys.Parse(p.Key)
		switch {
		case !ok:
		case k.Kind == KindPythonConfig || k.Kind == KindPythonStop:
			python = append(python, p)
		case k.Kind == KindQueue || k.Kind == KindAsk:
			queues[k.Group] = append(queues[k.Group], p)
		default:
			takeKey(s, k, p)
		}
	}
	for group, ps := range queues {
		c.takeQueue(s, group, ps)
	}
	for _, p := range python {
		k, _ := c.Keys.Parse(p.Key)
		takePython(s, k, p)
	}
	return nil
}

// takeQueue takes in a group's queue as read from its record and its asks (see
// Keys.DecodeGroupQueue).
func (c *Consul) takeQueue(s *fleet.Snapshot, group string, pairs []*api.KVPair) {
	var record *api.KVPair
	for _, p := range pairs {
		if p.Key == c.Keys.GroupQueue(group) {
			record = p
		}
	}
	g := snapshotGroup(s, group)
	if q, err := c.Keys.DecodeGroupQueue(group, record, pairs); err != nil {
		g.Error = err.Error()
	} else {
		g.Queue = q
	}
	s.Groups[group] = g
}

// takeKey takes in one of rebootmgr's keys, or one of the Python rebootmgr's locks.
func takeKey(s *fleet.Snapshot, k Key, p *api.KVPair) {
	switch k.Kind {
	case KindStop:
		s.Stop = &fleet.Mark{Value: string(p.Value)}
	case KindHolders:
		if f, err := lock.DecodeFleet(p.Value); err == nil {
			s.Fleet = f
		} else {
			s.FleetError = fmt.Sprintf("fleet's lock holders %s: %v", p.Key, err)
		}
	case KindClaims:
		if cl, err := lock.DecodeClaims(p.Value); err == nil {
			s.Claims = cl
		} else {
			s.FleetError = fmt.Sprintf("fleet's claims of room %s: %v (delete the key: it only orders the nodes waiting)", p.Key, err)
		}
	case KindDisabled:
		s.Disabled[k.Node] = fleet.Mark{Value: string(p.Value)}
	case KindRebootRequired:
		s.Requests[k.Node] = fleet.Mark{Value: string(p.Value)}
	case KindMember:
		s.Members[k.Service] = append(s.Members[k.Service], k.Node)
	case KindPythonSession, KindPythonMarker:
		takePythonLock(s, k, p)
	default:
		takeGroupKey(s, k, p)
	}
}

// snapshotGroup is group's state in s, with the defaults of a group without keys.
func snapshotGroup(s *fleet.Snapshot, group string) fleet.GroupState {
	if g, ok := s.Groups[group]; ok {
		return g
	}
	return fleet.GroupState{Lock: lock.Record{Version: lock.Version}, Limit: lock.One, Legacy: map[string]string{}}
}

// takeGroupKey takes in a group's key (a turn key is none that status shows).
func takeGroupKey(s *fleet.Snapshot, k Key, p *api.KVPair) {
	g := snapshotGroup(s, k.Group)
	switch k.Kind {
	case KindLock:
		if rec, err := lock.Decode(p.Value); err != nil {
			g.Error = fmt.Sprintf("reboot lock %s: %v", p.Key, err)
		} else {
			g.Lock = rec
		}
	case KindGroupStop:
		g.Stop = &fleet.Mark{Value: string(p.Value)}
	case KindHistory:
		if l, err := history.Decode(p.Value); err != nil {
			g.HistoryError = fmt.Sprintf("history %s: %v", p.Key, err)
		} else {
			g.History = l
		}
	case KindLimit:
		if l, err := lock.ParseLimit(string(p.Value)); err != nil {
			g.Error = fmt.Sprintf("key %s: %v", p.Key, err)
		} else {
			g.Limit = l
		}
	default:
		return
	}
	s.Groups[k.Group] = g
}

// pythonHolder says whether a key of the Python rebootmgr's lock holds it, as the store's View
// and the fleet's snapshot judge it: a session lock held (the node unknown: ""), or a marker
// rebootmgr did not write (the node it names).
func pythonHolder(session bool, p *api.KVPair) (node string, held bool) {
	switch {
	case session:
		return "", p.Session != ""
	case OwnMarker(string(p.Value)):
		return "", false
	}
	return strings.TrimSpace(string(p.Value)), true
}

// takePythonLock takes in a key of the Python rebootmgr's lock that holds it: a group's, or one
// of no group.
func takePythonLock(s *fleet.Snapshot, k Key, p *api.KVPair) {
	node, held := pythonHolder(k.Kind == KindPythonSession, p)
	switch {
	case !held:
	case k.Group == "":
		s.Legacy[p.Key] = node
	default:
		g := snapshotGroup(s, k.Group)
		g.Legacy[p.Key] = node
		s.Groups[k.Group] = g
	}
}

// takePython takes in the Python rebootmgr's marks (see python.go): a node's config, whose
// group is kept and which disables the node where rebootmgr's own mark does not, and a group's
// stop flag, which stops it where rebootmgr's own does not.
func takePython(s *fleet.Snapshot, k Key, p *api.KVPair) {
	if k.Kind == KindPythonStop {
		if g := snapshotGroup(s, k.Group); g.Stop == nil {
			g.Stop = &fleet.Mark{Value: "(the Python rebootmgr's " + p.Key + ") " + string(p.Value)}
			s.Groups[k.Group] = g
		}
		return
	}
	s.Python[k.Node] = PythonGroup(p.Value)
	if _, ok := s.Disabled[k.Node]; ok {
		return
	}
	if reason, disabled := PythonDisabled(p.Value); disabled {
		s.Disabled[k.Node] = fleet.Mark{Value: "the Python rebootmgr's config " + p.Key + " " + reason}
	}
}

// snapshotNodes reads the catalog's nodes, their groups and zones, into s.
func (c *Consul) snapshotNodes(ctx context.Context, s *fleet.Snapshot) error {
	nodes, _, err := read(ctx, c.Options, reading{what: "read nodes from consul", needs: `node_prefix "" read`}, c.Client.Catalog().Nodes)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return errors.New("consul's catalog lists no node at all: the token may lack node_prefix \"\" read, or this is not the cluster you meant")
	}
	for _, n := range nodes {
		s.Nodes[n.Node] = n.Meta[GroupMeta]
		if z := n.Meta[ZoneMeta]; z != "" {
			s.Zones[n.Node] = z
		}
	}
	return nil
}

// snapshotServices reads the services tagged rebootmgr, with all their instances, into s.
func (c *Consul) snapshotServices(ctx context.Context, s *fleet.Snapshot) error {
	services, _, err := read(ctx, c.Options, reading{what: "read services from consul", needs: `service_prefix "" read`}, c.Client.Catalog().Services)
	if err != nil {
		return err
	}
	var names []string
	for name, tags := range services {
		if slices.Contains(tags, health.Tag) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	h := Health{Client: c.Client, Options: c.Options}
	for _, name := range names {
		instances, err := h.Instances(ctx, name)
		if err != nil {
			return err
		}
		s.Services = append(s.Services, fleet.Service{Name: name, Instances: instances})
	}
	return nil
}

// snapshotDaemons reads every node's daemon (its service and check), and which nodes are in
// maintenance, into s.
func (c *Consul) snapshotDaemons(ctx context.Context, s *fleet.Snapshot) error {
	r := reading{what: fmt.Sprintf("read the %s service from consul", DaemonService), needs: fmt.Sprintf("service %q read", DaemonService)}
	entries, _, err := read(ctx, c.Options, r, func(q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
		return c.Client.Health().Service(DaemonService, "", false, q)
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		s.Daemons[e.Node.Node] = daemonOf(e)
	}
	opts := c.Options
	opts.Filter = `CheckID == "` + api.NodeMaint + `"`
	checks, _, err := read(ctx, opts, reading{what: "read nodes in maintenance from consul", needs: `node_prefix "" read`}, func(q *api.QueryOptions) (api.HealthChecks, *api.QueryMeta, error) {
		return c.Client.Health().State(api.HealthAny, q)
	})
	if err != nil {
		return err
	}
	for _, ch := range checks {
		s.Maintenance[ch.Node] = ch.Notes
	}
	return nil
}

// Daemon reads node's daemon from Consul; false when none ever registered there.
func (c *Consul) Daemon(ctx context.Context, node string) (fleet.Daemon, bool, error) {
	opts := c.Options
	opts.Filter = "Node.Node == " + strconv.Quote(node)
	r := reading{what: fmt.Sprintf("read the %s service of %s from consul", DaemonService, node)}
	entries, _, err := read(ctx, opts, r, func(q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
		return c.Client.Health().Service(DaemonService, "", false, q)
	})
	if err != nil || len(entries) == 0 {
		return fleet.Daemon{}, false, err
	}
	return daemonOf(entries[0]), true, nil
}

// daemonOf is the daemon an entry of its service shows: its check's state and output, and the
// settings its meta publishes.
func daemonOf(e *api.ServiceEntry) fleet.Daemon {
	d := fleet.Daemon{State: fleet.DaemonDown}
	for _, ch := range e.Checks {
		if ch.ServiceID == e.Service.ID && ch.CheckID == DaemonCheck {
			d.State, d.Status = daemonState(ch.Status), ch.Output
		}
	}
	var err error
	if d.Settings, err = fleet.ParseSettings(e.Service.Meta); err != nil {
		d.SettingsError = err.Error()
	}
	if t, ok := fleet.ParseTasks(e.Service.Meta); ok {
		d.Tasks = &t
	}
	return d
}

// daemonState is the state of a daemon whose check is status.
func daemonState(status string) fleet.DaemonState {
	switch status {
	case DaemonRunning:
		return fleet.DaemonRunning
	case DaemonNeedsOperator:
		return fleet.DaemonNeedsOperator
	}
	return fleet.DaemonDown
}
