package pipeline

import (
	"context"
	"errors"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// claimAfter keeps this node's claim of room as the run's end says: a node that waits for room
// (place.RoomError) in services it shares with nodes of more room claims it, judged on the holders of
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
	var re *place.RoomError
	room := errors.As(err, &re)
	var change func(lock.Claims) (lock.Claims, error)
	switch {
	case room && p.ClaimFor <= 0:
		// A one-off run waiting for room leaves the claim of this node's daemon as it is.
		return
	case room && len(re.Services) > 0 && len(re.Seen) > 0:
		claimFor := min(p.ClaimFor, lock.MaxClaimFor)
		cl := lock.Claim{Node: p.Node, AtOnce: re.AtOnce, Services: re.Services, Seen: re.Seen, Judged: now, Until: now.Add(claimFor)}
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
