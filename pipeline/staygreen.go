package pipeline

import (
	"context"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// GreenFallback is how often a run staying green that hears its daemon's watches (see
// Listening) looks, and keeps its turn, when nothing is reported: its turn key tells it of a
// wake, so it keeps its turn only as a node working towards its place must (lock.KeepEvery).
const GreenFallback = lock.KeepEvery

// green is a run staying green: when it started, last looked and last kept its turn, the moment
// a place last opened in its group as it saw it, and whether its watches report every change.
type green struct {
	start, looked, kept, freed time.Time
	watching                   bool
}

// lookEvery is how long a run staying green for d goes without a look: at most a tenth of d and
// a second while it cannot rely on its watches (it polls), GreenFallback while it can.
func (g green) lookEvery(d time.Duration) time.Duration {
	if g.watching {
		return GreenFallback
	}
	return min(d/10, time.Second)
}

// keepEvery is how long it goes without keeping its turn: half of lock.AnswerWithin while it
// cannot hear its turn key (a wake must be answered within lock.AnswerWithin), GreenFallback
// while it can (it answers at the wake).
func (g green) keepEvery() time.Duration {
	if g.watching {
		return GreenFallback
	}
	return lock.AnswerWithin / 2
}

// mode names how the run looks, for the log.
func (g green) mode() string {
	if g.watching {
		return "at each change the watches report"
	}
	return "polling"
}

// next is the next moment something is due for a run staying green for d.
func (g green) next(d time.Duration) time.Time {
	at := g.start.Add(d)
	for _, t := range []time.Time{g.looked.Add(g.lookEvery(d)), g.kept.Add(g.keepEvery())} {
		if t.Before(at) {
			at = t
		}
	}
	return at
}

// stayGreen watches the health gate for StayGreen before the node takes the lock: a check that
// fails at any look in that time stops the run, so a flapping check does not let a node start.
// A run that hears its daemon's watches (see Listening) looks at every change they report (of
// its services' health, the reboots in flight, the stop flags) and otherwise every
// GreenFallback; one that does not, or while they cannot be relied on, looks every tenth of
// StayGreen, a second at most. The node keeps its turn in the group's queue meanwhile (see
// keepTurn), and answers a wake.
func (p *Pipeline) stayGreen(ctx context.Context) error {
	if p.StayGreen <= 0 {
		return nil
	}
	lis := listen(ctx)
	var changed Change
	now := p.Clock.Now()
	g := green{start: now, looked: now, kept: now, freed: p.queue.Freed}
	if lis != nil {
		defer lis.Close()
		// What was reported since the run started (the daemon's loop took its events before it).
		changed, g.watching = lis.Take()
	}
	p.Logger.Info("health must stay green before the lock is taken", logkey.Gate, "stay green", logkey.For, p.StayGreen, logkey.Mode, g.mode())
	if freed, ok := p.keepTurn(ctx); ok {
		g.freed = freed
	}
	for {
		if now.Sub(g.start) >= p.StayGreen {
			return p.checkHealth(ctx, "health, green for "+p.StayGreen.String())
		}
		if err := p.greenLook(ctx, &g, changed, now); err != nil {
			return err
		}
		var err error
		if changed, err = p.awaitGreen(ctx, lis, &g); err != nil {
			return err
		}
		now = p.Clock.Now()
	}
}

// greenLook does what is due at now for a run staying green, given what its watches reported
// changed: a look at the view and the health of its services at a change of either, or when a
// look is due; a read of the stop flags alone at a change of them; its turn kept at a wake, when
// a keep is due, or when a look sees that a place opened.
func (p *Pipeline) greenLook(ctx context.Context, g *green, changed Change, now time.Time) error {
	look := changed.Has(ChangedHealth) || now.Sub(g.looked) >= g.lookEvery(p.StayGreen)
	keep := changed.Has(ChangedTurn) || now.Sub(g.kept) >= g.keepEvery()
	switch {
	case look:
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
		g.looked = now
		// A node woken meanwhile (a place given back, or a pass reaching it: see
		// place.PassTurns) answers within lock.AnswerWithin, as a daemon between runs does, or
		// it would be passed over while it stays green.
		keep = keep || !v.Queue.Freed.Equal(g.freed)
		g.freed = v.Queue.Freed
	case changed.Has(ChangedStop):
		if err := p.checkStop(ctx); err != nil {
			return err
		}
	}
	if keep {
		// A wake it answers is one a later look need not answer again.
		if freed, ok := p.keepTurn(ctx); ok {
			g.freed = freed
		}
		g.kept = now
	}
	return nil
}

// awaitGreen waits until the next thing due for a run staying green (see green.next), or until
// its watches report a change, and says what they reported. A report pending is taken at once.
func (p *Pipeline) awaitGreen(ctx context.Context, lis Listener, g *green) (Change, error) {
	var wake <-chan struct{}
	if lis != nil {
		wake = lis.Wake()
		select {
		case <-wake:
			return p.heard(lis, g), nil
		default:
		}
	}
	select {
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	case <-p.Clock.After(g.next(p.StayGreen).Sub(p.Clock.Now())):
	case <-wake:
	}
	return p.heard(lis, g), nil
}

// heard takes what lis reported (nothing without one), and notes whether its watches can be
// relied on.
func (p *Pipeline) heard(lis Listener, g *green) Change {
	if lis == nil {
		return 0
	}
	changed, watching := lis.Take()
	if watching != g.watching {
		g.watching = watching
		p.Logger.Debug("staying green: looking at what the watches report, or polling while they cannot be relied on", logkey.Mode, g.mode())
	}
	return changed
}
