package store

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
)

// DaemonService is the service each daemon registers with its local agent: its check says
// whether the daemon runs (and its output is the daemon's one-line status), its meta what it
// judges by (see fleet.Settings).
const DaemonService = "rebootmgr"

// DaemonCheck is the ID of the daemon's check.
const DaemonCheck = "rebootmgr:daemon"

// WakesMeta is the meta key of the daemon's service that says it tells the nodes waiting in its
// group's queue when it gives a place back (their turn keys: see pipeline.Woken), with the value
// WakesTurn. A daemon from before the turn keys says nothing of it: the nodes waiting behind it
// must watch the lock themselves.
const (
	WakesMeta = "wakes"
	WakesTurn = "turn"
)

// SilentDaemons are the nodes whose registered daemon does not tell the nodes waiting in a queue
// when it gives a place back (see WakesMeta): an older rebootmgr's. Daemons hidden by ACLs are an
// error (they might be such daemons).
func (c *Consul) SilentDaemons(ctx context.Context) ([]string, error) {
	opts := c.Options
	opts.Filter = fmt.Sprintf("ServiceMeta.%s != %q", WakesMeta, WakesTurn)
	services, _, err := read(ctx, opts, reading{what: "read the daemons that do not wake the queue"}, func(q *api.QueryOptions) ([]*api.CatalogService, *api.QueryMeta, error) {
		return c.Client.Catalog().Service(DaemonService, "", q)
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(services))
	for _, s := range services {
		out = append(out, s.Node)
	}
	return out, nil
}

// The states of the daemon's check.
const (
	// DaemonRunning: the daemon runs and goes on by itself.
	DaemonRunning = api.HealthPassing
	// DaemonNeedsOperator: the daemon runs, and its node waits for an operator.
	DaemonNeedsOperator = api.HealthWarning
	// DaemonDown: the daemon stopped, or has not said it runs for longer than its check's TTL.
	DaemonDown = api.HealthCritical
)

// Registration is a daemon's service in its local agent. The check is a TTL check: the daemon
// says it runs at every change of its status and at least every TTL/3, so that a daemon killed
// shows as down within the TTL.
type Registration struct {
	Client *api.Client
	Node   string
	// Meta is what the daemon publishes of its settings (fleet.Settings.Meta).
	Meta map[string]string
	TTL  time.Duration
}

// Register registers the service and its check (critical until the first Update); its meta is
// Meta, and WakesMeta: this daemon wakes the queue.
func (r Registration) Register(ctx context.Context) error {
	meta := maps.Clone(r.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[WakesMeta] = WakesTurn
	reg := &api.AgentServiceRegistration{
		ID:   DaemonService,
		Name: DaemonService,
		Meta: meta,
		Check: &api.AgentServiceCheck{
			CheckID: DaemonCheck,
			Name:    "rebootmgr daemon",
			Notes:   "the rebootmgr daemon of this node: passing while it runs, warning while its node waits for an operator (the output says what resolves it), critical when it stopped or has not been heard of",
			TTL:     r.TTL.String(),
			Status:  DaemonDown,
		},
	}
	if err := r.Client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return fmt.Errorf("register the %s service on %s: %w", DaemonService, r.Node, classify(err))
	}
	return nil
}

// Update sets the check's state and output.
func (r Registration) Update(ctx context.Context, state, output string) error {
	// clip.Text keeps it within the 4 KiB an agent keeps of a check's output.
	output = clip.Text(strings.TrimSpace(output))
	if err := r.Client.Agent().UpdateTTLOpts(DaemonCheck, output, state, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("update the %s check on %s: %w", DaemonService, r.Node, classify(err))
	}
	return nil
}

// Publish sets the check from the daemon's status: running, or waiting for an operator.
func (r Registration) Publish(ctx context.Context, operator bool, status string) error {
	state := DaemonRunning
	if operator {
		state = DaemonNeedsOperator
	}
	return r.Update(ctx, state, status)
}
