// Package cas is the loop of every check-and-set write rebootmgr makes: read, change, write
// against what was read, and read again when someone else wrote first.
package cas

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Attempts bounds the writes of one change: each lost race is someone else's change made,
// so running out means a record changing faster than it can be read and written.
const Attempts = 20

// After a lost race the next attempt waits a random time below firstPause, doubled at every
// race lost in a row up to maxPause: nodes that all wrote at once (a whole group asked to
// reboot, joining its queue) spread out instead of reading and losing again together.
const (
	firstPause = 2 * time.Millisecond
	maxPause   = 100 * time.Millisecond
)

// ErrRaces means a change lost its race Attempts times in a row: nothing was written.
var ErrRaces = errors.New("changed by someone else at every attempt")

// Loop runs try until its write holds (true) or fails (an error), at most Attempts times,
// pausing a little after each lost race; it ends with ctx's cause when ctx ends in a pause.
func Loop(ctx context.Context, try func() (written bool, err error)) error {
	return loop(ctx, pause, try)
}

// pause is how long to wait after lost races in a row.
func pause(lost int) time.Duration {
	ceiling := min(firstPause<<min(lost-1, 10), maxPause)
	return rand.N(ceiling)
}

func loop(ctx context.Context, pause func(lost int) time.Duration, try func() (bool, error)) error {
	for attempt := 1; attempt <= Attempts; attempt++ {
		written, err := try()
		if err != nil || written {
			return err
		}
		if attempt == Attempts {
			break
		}
		t := time.NewTimer(pause(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
	return fmt.Errorf("%w (%d attempts): giving up", ErrRaces, Attempts)
}
