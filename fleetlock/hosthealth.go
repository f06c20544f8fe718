package fleetlock

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// health judges a host's services as the pipeline judges a node's (see hostHealth).
func (l *Locks) health(st *store.Consul, log *slog.Logger) place.Health {
	return hostHealth{Health: store.Health{Client: l.Client, Members: st, Remember: true, InOrder: l.HealthInOrder}, members: st, log: log}
}

// hostHealth judges the services of a host from afar: those Consul's catalog lists for its node,
// and those rebootmgr remembers it running (see store.Members) that the catalog no longer
// lists for it. The host's own agent cannot be asked, as a daemon asks its own: a host just
// back from its reboot is in the catalog before its services are, or not yet at all (a client
// agent leaves the cluster at shutdown), and judged by the catalog alone it would pass with
// nothing to judge. A remembered service it has no instance of fails (its own instance
// missing) until the catalog lists it again. A host Consul knows no node of and rebootmgr
// remembers nothing of has no services to judge. The report it returns (whose words a
// refusal carries to the client) leaves out the output of the checks, which may name
// addresses of the fleet; the whole report goes to the log.
type hostHealth struct {
	store.Health
	members *store.Consul
	log     *slog.Logger
}

func (h hostHealth) Check(ctx context.Context, node string, down map[string]string) (health.Report, error) {
	services, err := h.Services(ctx, node)
	if err != nil && !errors.Is(err, store.ErrNodeUnknown) {
		return health.Report{}, err
	}
	remembered, err := h.members.MemberOf(ctx, node)
	if err != nil {
		return health.Report{}, err
	}
	for _, name := range remembered {
		if slices.ContainsFunc(services, func(s health.Service) bool { return s.Name == name }) {
			continue
		}
		svc, ok, err := h.absent(ctx, name)
		if err != nil {
			return health.Report{}, err
		}
		if ok {
			services = append(services, svc)
		}
	}
	if full := health.Evaluate(node, services, down); !full.OK() {
		h.log.Info("the host's services do not pass", logkey.Reason, full.Reason())
	}
	return health.Evaluate(node, withoutOutput(services), down), nil
}

// withoutOutput is services with the output of every check left out.
func withoutOutput(services []health.Service) []health.Service {
	out := make([]health.Service, len(services))
	for i, svc := range services {
		svc.Instances = slices.Clone(svc.Instances)
		for j, inst := range svc.Instances {
			inst.Checks = slices.Clone(inst.Checks)
			for k := range inst.Checks {
				inst.Checks[k].Output = ""
			}
			svc.Instances[j] = inst
		}
		out[i] = svc
	}
	return out
}

// absent is a service the host is remembered running and the catalog does not list for it,
// judged by the rules of the first of its other instances tagged rebootmgr; false when none is
// any more (the service no longer gates reboots).
func (h hostHealth) absent(ctx context.Context, name string) (health.Service, bool, error) {
	instances, err := h.Instances(ctx, name)
	if err != nil {
		return health.Service{}, false, err
	}
	var tags []string
	for _, inst := range instances {
		if t, ok := health.AddTags(nil, inst.Tags); ok {
			tags = t
			break
		}
	}
	if tags == nil {
		return health.Service{}, false, nil
	}
	members, err := h.members.Members(ctx, name)
	if err != nil {
		return health.Service{}, false, err
	}
	return health.Service{Name: name, Tags: tags, Instances: instances, Members: members}, true, nil
}
