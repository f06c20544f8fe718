package pipeline

import (
	"context"

	"github.com/rebootmgr/rebootmgr/place"
)

func (p *Pipeline) checkStop(ctx context.Context) error {
	f, err := p.Store.Stop(ctx)
	if err != nil {
		return err
	}
	p.Sightings.Stopped(f.Set, p.Clock.Now())
	if f.Set {
		return place.StopError(f)
	}
	return nil
}

// checkHealth is the health gate: every rule of every service of the node holds, with every
// reboot in flight anywhere in the fleet counted as a failing instance.
func (p *Pipeline) checkHealth(ctx context.Context, gate string) error {
	v, err := p.locks().View(ctx)
	if err != nil {
		return err
	}
	return p.checkHealthIn(ctx, v, gate)
}

// checkHealthIn is the health gate with the reboots in flight as v has them.
func (p *Pipeline) checkHealthIn(ctx context.Context, v place.View, gate string) error {
	p.seen.sawView(v, p.Node)
	return place.HealthIn(ctx, p.health(), p.Logger, v, p.Node, gate)
}
