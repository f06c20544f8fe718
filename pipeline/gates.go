package pipeline

import (
	"context"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
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

// stayGreen watches the health gate for StayGreen before the node takes the lock: a check that
// fails at any look in that time stops the run, so a flapping check does not let a node start.
// The node keeps its turn in the group's queue meanwhile (see keepTurn).
func (p *Pipeline) stayGreen(ctx context.Context) error {
	if p.StayGreen <= 0 {
		return nil
	}
	look := min(p.StayGreen/10, time.Second)
	p.Logger.Info("health must stay green before the lock is taken", logkey.Gate, "stay green", logkey.For, p.StayGreen)
	p.keepTurn(ctx)
	start := p.Clock.Now()
	kept, freed := start, p.queue.Freed
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-p.Clock.After(look):
		}
		now := p.Clock.Now()
		if now.Sub(start) >= p.StayGreen {
			return p.checkHealth(ctx, "health, green for "+p.StayGreen.String())
		}
		// The view holds the stop flags, as the store's Stop reads them: one read for both.
		v, err := p.locks().View(ctx)
		if err != nil {
			return err
		}
		if v.Stop.Set {
			return place.StopError(v.Stop)
		}
		if err := p.checkHealthIn(ctx, v, "health while staying green"); err != nil {
			return err
		}
		// A node woken meanwhile (a place given back, or a pass reaching it: see
		// place.PassTurns) answers within lock.AnswerWithin, as a daemon between runs does, or
		// it would be passed over while it stays green: at once when a place opened, and every
		// half of that anyway, since a run cannot hear its turn key.
		if now.Sub(kept) >= lock.AnswerWithin/2 || !v.Queue.Freed.Equal(freed) {
			p.keepTurn(ctx)
			kept, freed = now, v.Queue.Freed
		}
	}
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
	return place.HealthIn(ctx, p.Health, p.Logger, v, p.Node, gate)
}
