package fleet

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// Reader reads a snapshot from Consul: one request for rebootmgr's keys, one for the nodes,
// one for the services, and one per service tagged rebootmgr.
type Reader struct {
	Client *api.Client
	Keys   store.Keys
	Limit  int
	// Local is the node this runs on; LocalFiles are its reboot-required files.
	Local      string
	LocalFiles []string
	// FileExists reports whether a local file exists (injected for tests).
	FileExists func(path string) bool
	Now        func() time.Time
}

// Read takes the snapshot.
func (r Reader) Read(ctx context.Context) (Snapshot, error) {
	s := Snapshot{At: r.Now().UTC(), Limit: r.Limit, Local: r.Local, Requests: map[string]Mark{}, Disabled: map[string]Mark{}, Lock: lock.Record{Version: lock.Version}}
	q := (&api.QueryOptions{}).WithContext(ctx)
	pairs, _, err := r.Client.KV().List(r.Keys.Prefix+"/", q)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read keys under %s: %w", r.Keys.Prefix, err)
	}
	for _, p := range pairs {
		switch {
		case p.Key == r.Keys.Stop():
			s.Stop = &Mark{Value: string(p.Value)}
		case p.Key == r.Keys.Lock():
			rec, err := lock.Decode(p.Value)
			if err != nil {
				s.LockError = fmt.Sprintf("reboot lock %s: %v", p.Key, err)
				continue
			}
			s.Lock = rec
		default:
			rest := strings.TrimPrefix(p.Key, r.Keys.Prefix+"/")
			node, name, ok := strings.Cut(rest, "/")
			if !ok || strings.Contains(name, "/") {
				continue
			}
			switch name {
			case "reboot_required":
				s.Requests[node] = Mark{Value: string(p.Value)}
			case "disabled":
				s.Disabled[node] = Mark{Value: string(p.Value)}
			}
		}
	}
	nodes, _, err := r.Client.Catalog().Nodes(q)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read nodes from consul: %w", err)
	}
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, n.Node)
	}
	services, _, err := r.Client.Catalog().Services(q)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read services from consul: %w", err)
	}
	var names []string
	for name, tags := range services {
		if slices.Contains(tags, health.Tag) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	h := health.Consul{Client: r.Client}
	for _, name := range names {
		instances, err := h.Instances(ctx, name)
		if err != nil {
			return Snapshot{}, err
		}
		s.Services = append(s.Services, Service{Name: name, Instances: instances})
	}
	for _, f := range r.LocalFiles {
		if r.FileExists(f) {
			s.LocalFiles = append(s.LocalFiles, f)
		}
	}
	return s, nil
}
