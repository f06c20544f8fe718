package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// roomError is a health gate that fails only for the reboots in flight (health.Report.RoomOnly):
// the node waits for room, with what it would claim (see lock.Claims).
type roomError struct {
	gate *ending.Error
	// atOnce is what the node's scarcest service allows at once; services are those of its
	// services that allow more; seen are the holders of the fleet's record it counted.
	atOnce   int
	services []string
	seen     []string
}

func (e *roomError) Error() string { return e.gate.Error() }
func (e *roomError) Unwrap() error { return e.gate }

// YieldIn is the gate of the claims of room: a node that does not hold a place yet leaves it to
// a node whose services allow fewer reboots at once, that waits for room in a service it runs,
// and that has not looked since a reboot it counted ended (lock.Claim.Holds). It says until when
// at most (the claim's end), and is judged on the View the place would be taken in.
func YieldIn(v View, node string, rep health.Report, now time.Time) error {
	if _, holds := v.Lock.Holder(node); holds || len(v.Claims.Claims) == 0 {
		return nil
	}
	services := make([]string, 0, len(rep.Services))
	for _, s := range rep.Services {
		services = append(services, s.Name)
	}
	atOnce := rep.Scarcity()
	for _, cl := range v.Claims.Claims {
		if _, holds := v.Fleet.Group(cl.Node); holds || cl.Node == node {
			continue
		}
		if cl.Holds(atOnce, services, v.InFlight(cl.Node), now) {
			ye := &lock.YieldError{Claim: cl}
			return &ending.Error{Gate: ending.ErrLockHeld, Msg: "cannot take the reboot lock yet: " + ye.Error(), Err: ye, Until: cl.End()}
		}
	}
	return nil
}

// claimAfter keeps this node's claim of room as the run's end says: a node that waits for room
// (roomError) in services it shares with nodes of more room claims it, judged on the holders of
// the fleet's record it counted (which every node reads alike: a Python rebootmgr's marker of
// its own group, which the others do not read, is no part of it); any other end takes its claim
// away. A one-off run (no ClaimFor) that waits for room leaves the claim of the node's daemon as
// it is. Nothing is written when the claim is as it should be (the same, and not near its end)
// or in a dry run. A claim that cannot be written is logged: claims order the nodes, they never
// decide whether one may reboot.
func (p *Pipeline) claimAfter(ctx context.Context, err error) {
	if p.DryRun || ctx.Err() != nil {
		return
	}
	now := p.Clock.Now().UTC()
	var re *roomError
	room := errors.As(err, &re)
	var change func(lock.Claims) (lock.Claims, error)
	switch {
	case room && p.ClaimFor <= 0:
		// A one-off run waiting for room leaves the claim of this node's daemon as it is.
		return
	case room && len(re.services) > 0 && len(re.seen) > 0:
		claimFor := min(p.ClaimFor, lock.MaxClaimFor)
		cl := lock.Claim{Node: p.Node, AtOnce: re.atOnce, Services: re.services, Seen: re.seen, Judged: now, Until: now.Add(claimFor)}
		if p.claim != nil && p.claim.Same(cl) && p.claim.Until.After(now.Add(claimFor/2)) && !p.claim.Judged.After(now) {
			return
		}
		change = func(c lock.Claims) (lock.Claims, error) { return c.With(cl) }
	case p.claim != nil:
		change = func(c lock.Claims) (lock.Claims, error) { return c.Without(p.Node), nil }
	default:
		return
	}
	switch werr := p.Store.ChangeClaims(ctx, change); {
	case werr != nil && !p.claimFailing:
		p.Logger.Warn("could not keep this node's claim of room (under an ACL policy, the daemon needs key \"service/rebootmgr/claims\" write): nodes with more room may take it first, which slows the roll, never breaks a rule", logkey.Err, werr)
		p.claimFailing = true
	case werr == nil && p.claimFailing:
		p.Logger.Info("this node's claim of room is written again")
		p.claimFailing = false
	}
}

// Withdraw takes this node's claim of room away: a daemon that stops looks no more, and must not
// hold up others until its claim lapses. Nothing is written where the node has none.
func (p *Pipeline) Withdraw(ctx context.Context) error {
	if p.DryRun {
		return nil
	}
	return p.Store.ChangeClaims(ctx, func(c lock.Claims) (lock.Claims, error) { return c.Without(p.Node), nil })
}
