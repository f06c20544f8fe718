package pipeline

import (
	"context"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/place"
)

// checked is a place.Health whose every Check notes its report's HeldBy in seen.
type checked struct {
	place.Health
	seen *Seen
}

func (c checked) Check(ctx context.Context, node string, down map[string]string) (health.Report, error) {
	rep, err := c.Health.Check(ctx, node, down)
	c.seen.HeldBy = nil
	if err == nil && !rep.OK() {
		c.seen.HeldBy = rep.HeldBy
	}
	return rep, err
}

// health is the pipeline's health, its checks noted in the run's Seen (see Seen.HeldBy).
func (p *Pipeline) health() place.Health { return checked{Health: p.Health, seen: &p.seen} }
