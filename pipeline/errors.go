package pipeline

import (
	"errors"

	"github.com/rebootmgr/rebootmgr/ending"
)

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
