package fleet

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// Reader reads a snapshot from Consul: one request for rebootmgr's keys, one for the nodes,
// one for the services, and one per service tagged rebootmgr.
type Reader struct {
	Client *api.Client
	Keys   store.Keys
	// Local is the node this runs on; LocalFiles are its reboot-required files, LocalState what
	// else it knows of itself (nil: nothing).
	Local      string
	LocalFiles []string
	LocalState *Local
	// FileExists reports whether a local file exists (injected for tests).
	FileExists func(path string) bool
	Now        func() time.Time
}

// Read takes the snapshot.
func (r Reader) Read(ctx context.Context) (Snapshot, error) {
	s := Snapshot{
		At: r.Now().UTC(), Local: r.Local, LocalState: r.LocalState,
		Legacy: map[string]string{}, Requests: map[string]Mark{}, Disabled: map[string]Mark{}, Groups: map[string]GroupState{},
		Nodes: map[string]string{}, Members: map[string][]string{}, Daemons: map[string]Daemon{}, Maintenance: map[string]string{}, Zones: map[string]string{},
		Python: map[string]string{},
	}
	// The Python rebootmgr's marks, taken in once every key is read (see takePython).
	var python []*api.KVPair
	q := (&api.QueryOptions{}).WithContext(ctx)
	// The fleet's stop flag is read by itself too: a token that may not read it gets an error
	// naming the key, where a list would leave it out without a word.
	if _, _, err := r.Client.KV().Get(r.Keys.Stop(), q); err != nil {
		return Snapshot{}, fmt.Errorf("read the stop flag %s: %w", r.Keys.Stop(), err)
	}
	pairs, meta, err := r.Client.KV().List(r.Keys.Prefix+"/", q)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read keys under %s: %w", r.Keys.Prefix, err)
	}
	if meta.ResultsFilteredByACLs {
		// A stop flag hidden is no stop flag absent: never an all-clear that cannot be known.
		return Snapshot{}, fmt.Errorf("read keys under %s: %w (key_prefix %q read)", r.Keys.Prefix, store.ErrFiltered, r.Keys.Prefix+"/")
	}
	group := func(name string) GroupState {
		if g, ok := s.Groups[name]; ok {
			return g
		}
		return GroupState{Lock: lock.Record{Version: lock.Version}, Limit: lock.One, Legacy: map[string]string{}}
	}
	setLock := func(name string, p *api.KVPair) {
		g := group(name)
		rec, err := lock.Decode(p.Value)
		if err != nil {
			g.Error = fmt.Sprintf("reboot lock %s: %v", p.Key, err)
		} else {
			g.Lock = rec
		}
		s.Groups[name] = g
	}
	addGroupLegacy := func(name string, p *api.KVPair) {
		if node, held := legacyHolder(p); held {
			g := group(name)
			g.Legacy[p.Key] = node
			s.Groups[name] = g
		}
	}
	for _, p := range pairs {
		rest := strings.TrimPrefix(p.Key, r.Keys.Prefix+"/")
		parts := strings.Split(rest, "/")
		switch {
		case rest == "stop":
			s.Stop = &Mark{Value: string(p.Value)}
		case rest == "lock":
			setLock(store.DefaultGroup, p)
		case len(parts) == 3 && parts[0] == "groups":
			name := parts[1]
			switch parts[2] {
			case "lock":
				if name != store.DefaultGroup {
					setLock(name, p)
				}
			case "stop":
				g := group(name)
				g.Stop = &Mark{Value: string(p.Value)}
				s.Groups[name] = g
			case "queue":
				g := group(name)
				if q, err := lock.DecodeQueue(p.Value); err != nil {
					g.Error = fmt.Sprintf("group's queue %s: %v", p.Key, err)
				} else {
					g.Queue = q
				}
				s.Groups[name] = g
			case "history":
				g := group(name)
				if l, err := history.Decode(p.Value); err != nil {
					g.HistoryError = fmt.Sprintf("history %s: %v", p.Key, err)
				} else {
					g.History = l
				}
				s.Groups[name] = g
			case "limit":
				g := group(name)
				if l, err := lock.ParseLimit(string(p.Value)); err != nil {
					g.Error = fmt.Sprintf("key %s: %v", p.Key, err)
				} else {
					g.Limit = l
				}
				s.Groups[name] = g
			}
		case p.Key == r.Keys.LegacySession() || p.Key == r.Keys.LegacyMarker():
			if node, held := legacyHolder(p); held {
				s.Legacy[p.Key] = node
			}
		case len(parts) == 1 && strings.HasSuffix(rest, "_reboot_in_progress"):
			addGroupLegacy(strings.TrimSuffix(rest, "_reboot_in_progress"), p)
		case len(parts) == 2 && parts[1] == ".lock" && strings.HasSuffix(parts[0], "_lock"):
			addGroupLegacy(strings.TrimSuffix(parts[0], "_lock"), p)
		case rest == "claims":
			if c, err := lock.DecodeClaims(p.Value); err == nil {
				s.Claims = c
			} else {
				s.FleetError = fmt.Sprintf("fleet's claims of room %s: %v (delete the key: it only orders the nodes waiting)", p.Key, err)
			}
		case rest == "holders":
			if f, err := lock.DecodeFleet(p.Value); err == nil {
				s.Fleet = f
			} else {
				s.FleetError = fmt.Sprintf("fleet's lock holders %s: %v", p.Key, err)
			}
		case len(parts) == 3 && parts[0] == "members":
			if node, err := url.PathUnescape(parts[2]); err == nil {
				s.Members[parts[1]] = append(s.Members[parts[1]], node)
			}
		case len(parts) == 2 && parts[1] == "reboot_required":
			s.Requests[parts[0]] = Mark{Value: string(p.Value)}
		case len(parts) == 2 && parts[1] == "disabled":
			s.Disabled[parts[0]] = Mark{Value: string(p.Value)}
		case len(parts) == 3 && parts[0] == "nodes" && parts[2] == "config", len(parts) == 1 && strings.HasSuffix(rest, "_stop"):
			python = append(python, p)
		}
	}
	r.takePython(&s, python, group)
	nodes, meta, err := r.Client.Catalog().Nodes(q)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read nodes from consul: %w", err)
	}
	if meta.ResultsFilteredByACLs {
		return Snapshot{}, fmt.Errorf("read nodes from consul: %w (node_prefix \"\" read)", store.ErrFiltered)
	}
	if len(nodes) == 0 {
		return Snapshot{}, fmt.Errorf("consul's catalog lists no node at all: the token may lack node_prefix \"\" read, or this is not the cluster you meant")
	}
	for _, n := range nodes {
		s.Nodes[n.Node] = n.Meta[store.GroupMeta]
		if z := n.Meta[store.ZoneMeta]; z != "" {
			s.Zones[n.Node] = z
		}
	}
	services, meta, err := r.Client.Catalog().Services(q)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read services from consul: %w", err)
	}
	if meta.ResultsFilteredByACLs {
		return Snapshot{}, fmt.Errorf("read services from consul: %w (service_prefix \"\" read)", store.ErrFiltered)
	}
	var names []string
	for name, tags := range services {
		if slices.Contains(tags, health.Tag) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	h := store.Health{Client: r.Client}
	for _, name := range names {
		instances, err := h.Instances(ctx, name)
		if err != nil {
			return Snapshot{}, err
		}
		s.Services = append(s.Services, Service{Name: name, Instances: instances})
	}
	if err := r.daemons(ctx, &s); err != nil {
		return Snapshot{}, err
	}
	for _, f := range r.LocalFiles {
		if r.FileExists(f) {
			s.LocalFiles = append(s.LocalFiles, f)
		}
	}
	return s, nil
}

// daemons reads every node's daemon (its service and check) and which nodes are in
// maintenance: two requests.
func (r Reader) daemons(ctx context.Context, s *Snapshot) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	entries, meta, err := r.Client.Health().Service(store.DaemonService, "", false, q)
	if err != nil {
		return fmt.Errorf("read the %s service from consul: %w", store.DaemonService, err)
	}
	if meta.ResultsFilteredByACLs {
		return fmt.Errorf("read the %s service from consul: %w (service %q read)", store.DaemonService, store.ErrFiltered, store.DaemonService)
	}
	for _, e := range entries {
		s.Daemons[e.Node.Node] = daemonOf(e)
	}
	qm := (&api.QueryOptions{Filter: `CheckID == "` + api.NodeMaint + `"`}).WithContext(ctx)
	checks, meta, err := r.Client.Health().State(api.HealthAny, qm)
	if err != nil {
		return fmt.Errorf("read nodes in maintenance from consul: %w", err)
	}
	if meta.ResultsFilteredByACLs {
		return fmt.Errorf("read nodes in maintenance from consul: %w (node_prefix \"\" read)", store.ErrFiltered)
	}
	for _, c := range checks {
		s.Maintenance[c.Node] = c.Notes
	}
	return nil
}

// daemonOf is the daemon an entry of its service shows.
func daemonOf(e *api.ServiceEntry) Daemon {
	d := Daemon{State: store.DaemonDown}
	for _, c := range e.Checks {
		if c.ServiceID == e.Service.ID && c.CheckID == store.DaemonCheck {
			d.State, d.Status = c.Status, c.Output
		}
	}
	var err error
	if d.Settings, err = ParseSettings(e.Service.Meta); err != nil {
		d.SettingsError = err.Error()
	}
	return d
}

// DaemonOf reads node's daemon from Consul; false when none ever registered there.
func DaemonOf(ctx context.Context, client *api.Client, node string) (Daemon, bool, error) {
	q := (&api.QueryOptions{Filter: "Node.Node == " + strconv.Quote(node)}).WithContext(ctx)
	entries, _, err := client.Health().Service(store.DaemonService, "", false, q)
	if err != nil {
		return Daemon{}, false, fmt.Errorf("read the %s service of %s from consul: %w", store.DaemonService, node, err)
	}
	if len(entries) == 0 {
		return Daemon{}, false, nil
	}
	return daemonOf(entries[0]), true, nil
}

// legacyHolder says whether a key of the Python rebootmgr's lock holds it, as store.View
// judges it: a session lock held (the node unknown: ""), or a marker rebootmgr did not write
// (the node it names).
func legacyHolder(p *api.KVPair) (node string, held bool) {
	switch {
	case strings.HasSuffix(p.Key, "/.lock"):
		return "", p.Session != ""
	case store.OwnMarker(string(p.Value)):
		return "", false
	}
	return strings.TrimSpace(string(p.Value)), true
}
