package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// StartMaintenance puts the local agent's node into maintenance. The node must be the
// agent's own: Consul keeps maintenance per agent.
func (c *Consul) StartMaintenance(ctx context.Context, node, reason string) error {
	if err := c.checkLocal(ctx, node); err != nil {
		return err
	}
	if !strings.HasPrefix(reason, maintenancePrefix) {
		reason = maintenancePrefix + " " + reason
	}
	current, err := c.maintenance(ctx, node)
	if err != nil {
		return err
	}
	if current != nil && !strings.HasPrefix(current.Notes, maintenancePrefix) {
		// Someone else's maintenance stays as it is, reason and all; it is theirs to end.
		c.Logger.Info("node is already in maintenance, started by someone else: keeping it", logkey.Reason, current.Notes)
		return nil
	}
	if err := c.Client.Agent().EnableNodeMaintenance(clip.Text(reason)); err != nil {
		return fmt.Errorf("put node %s into maintenance: %w", node, classify(err))
	}
	return nil
}

// EndMaintenance ends the node's maintenance if rebootmgr started it.
func (c *Consul) EndMaintenance(ctx context.Context, node string) error {
	if err := c.checkLocal(ctx, node); err != nil {
		return err
	}
	m, err := c.maintenance(ctx, node)
	if err != nil || m == nil {
		return err
	}
	if !strings.HasPrefix(m.Notes, maintenancePrefix) {
		c.Logger.Info("node is in maintenance, started by someone else: leaving it", logkey.Reason, m.Notes)
		return nil
	}
	if err := c.Client.Agent().DisableNodeMaintenance(); err != nil {
		return fmt.Errorf("end maintenance of node %s: %w", node, classify(err))
	}
	return nil
}

const nodeMaintenanceCheck = "_node_maintenance"

// maintenance returns the local agent's node maintenance check, nil when there is none.
func (c *Consul) maintenance(ctx context.Context, node string) (*api.AgentCheck, error) {
	checks, err := c.Client.Agent().ChecksWithFilterOpts("", c.query(ctx))
	if err != nil {
		return nil, fmt.Errorf("read checks of node %s: %w", node, classify(err))
	}
	return checks[nodeMaintenanceCheck], nil
}

// ErrNotLocal means a node's maintenance was asked of another node's agent.
var ErrNotLocal = errors.New("node is not the local consul agent's")

func (c *Consul) checkLocal(ctx context.Context, node string) error {
	name, err := NodeName(ctx, c.Client)
	if err != nil {
		return err
	}
	if name != node {
		return fmt.Errorf("%w: node %s, agent %s", ErrNotLocal, node, name)
	}
	return nil
}

// NodeName asks the local agent for its node name.
func NodeName(ctx context.Context, client *api.Client) (string, error) {
	name, _, err := LocalNode(ctx, client)
	return name, err
}

// GroupMeta is the node meta key that names a node's group (agent configuration:
// node_meta { rebootmgr-group = "compute" }).
const GroupMeta = "rebootmgr-group"

// ZoneMeta is the node meta key that names a node's zone (a rack, an availability zone): a
// group whose limit is bounded per zone reboots one zone at a time.
const ZoneMeta = "rebootmgr-zone"

// LocalNode asks the local agent for its node name and node meta.
func LocalNode(ctx context.Context, client *api.Client) (string, map[string]string, error) {
	var self struct {
		Config struct{ NodeName string }
		Meta   map[string]string
	}
	q := &api.QueryOptions{}
	if _, err := client.Raw().Query("/v1/agent/self", &self, q.WithContext(ctx)); err != nil {
		return "", nil, fmt.Errorf("ask the local consul agent for its node name: %w", classify(err))
	}
	if self.Config.NodeName == "" {
		return "", nil, errors.New("the local consul agent did not say its node name")
	}
	if err := ValidNode(self.Config.NodeName); err != nil {
		return "", nil, fmt.Errorf("the local consul agent's %w", err)
	}
	return self.Config.NodeName, self.Meta, nil
}
