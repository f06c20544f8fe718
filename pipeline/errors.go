package pipeline

import (
	"errors"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/place"
)

// The gates' sentinels and endings as the daemon reads them through this package (see
// package ending, where they are defined).
var (
	ErrUnhealthy = ending.ErrUnhealthy
	ErrLockHeld  = ending.ErrLockHeld
)

// EndingOf is ending.Of.
func EndingOf(err error) (ending.Ending, bool) { return ending.Of(err) }

// Gate is ending.Sentinel.
func Gate(err error) error { return ending.Sentinel(err) }

// GateName is ending.GateName.
func GateName(err error) string { return ending.GateName(err) }

// WaitsForOperator is ending.WaitsForOperator.
func WaitsForOperator(err error) bool { return ending.WaitsForOperator(err) }

// Resolution is ending.Resolution.
func Resolution(status string, err error, node, group string) string {
	return ending.Resolution(status, err, node, group)
}

// errWorking marks a node that could take a place and works towards it: it waits for the
// group's cooldown, or for its health to stay green. It keeps its turn in the group's queue
// (see Pipeline.keepTurn) and looks again within lock.KeepEvery.
var errWorking = errors.New("working towards its place")

// working marks err (a gate's) as the wait of a node working towards its place.
func working(err error) error {
	var e *ending.Error
	if errors.As(err, &e) && !e.Until.IsZero() {
		out := *e
		out.Err = errors.Join(out.Err, errWorking)
		return &out
	}
	return err
}

// PassReach is place.PassReach.
func PassReach(round int) int { return place.PassReach(round) }
