// Package cas is the loop of every check-and-set write rebootmgr makes: read, change, write
// against what was read, and read again when someone else wrote first.
package cas

import (
	"errors"
	"fmt"
)

// Attempts bounds the writes of one change: each lost race is someone else's change made,
// so running out means a record changing faster than it can be read and written.
const Attempts = 20

// ErrRaces means a change lost its race Attempts times in a row: nothing was written.
var ErrRaces = errors.New("changed by someone else at every attempt")

// Loop runs try until its write holds (true) or fails (an error), at most Attempts times.
func Loop(try func() (written bool, err error)) error {
	for range Attempts {
		written, err := try()
		if err != nil || written {
			return err
		}
	}
	return fmt.Errorf("%w (%d attempts): giving up", ErrRaces, Attempts)
}
