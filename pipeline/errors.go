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

// Working says whether a run ended working towards its place (the group's cooldown: see
// errWorking). Such a node keeps its turn at each run, and looks again within lock.KeepEvery:
// a change of the locks alone (its own write of the queue among them) gives it nothing to do,
// and must not run it again, or it would run as fast as Consul answers until the wait is over.
func Working(err error) bool { return errors.Is(err, errWorking) }
