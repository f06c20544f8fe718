package place

import (
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
)

// RoomError is a health gate that fails only for the reboots in flight (health.Report.RoomOnly):
// the node waits for room, with what it would claim (see lock.Claims).
type RoomError struct {
	gate *ending.Error
	// AtOnce is what the node's scarcest service allows at once; Services are those of its
	// services that allow more; Seen are the holders of the fleet's record it counted.
	AtOnce   int
	Services []string
	Seen     []string
}

func (e *RoomError) Error() string { return e.gate.Error() }
func (e *RoomError) Unwrap() error { return e.gate }

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
