package lock

import (
	"encoding/json"
	"fmt"
	"time"
)

// The bounds of the records a place is taken and given back with, as stored. They are written
// together in one Consul transaction, values in base64 there (a third larger), beside the Python
// rebootmgr's markers (which name the holders again): the bounds keep that transaction well
// within the 512 kB Consul takes in one, whatever the names, so that a release, an unlock or a
// steady-state is never refused for its size.
const (
	// MaxRecordBytes bounds a group's lock record and the fleet's record of holders: a place that
	// would pass it is not taken (the node waits, as for a full lock).
	MaxRecordBytes = 64 << 10
	// MaxQueueBytes bounds a group's queue record: the nodes past it wait in asks of their own
	// (see Ask; those are bounded by the group's nodes, one each), and a record stored larger
	// (by hand, or by another program) loses entries from its end at its next write (see
	// Queue.Encode).
	MaxQueueBytes = 96 << 10
	// QueueExpiry is how long an entry blocked by its node's own gates (or that missed its turn)
	// stays without its node saying anything: then it leaves the queue at the next join, and its
	// node joins again, at the end, when it asks again.
	QueueExpiry = 24 * time.Hour
)

// BoundError is a record that a change would make larger than its bound.
type BoundError struct {
	What  string // "reboot lock record", "fleet's record of holders"
	Bytes int
	Bound int
	// Entries is how many entries it holds already.
	Entries int
}

func (e *BoundError) Error() string {
	return fmt.Sprintf("the %s holds %d entries, as many as fit its bound (%d bytes, %d with one more): the node waits until one leaves", e.What, e.Entries, e.Bound, e.Bytes)
}

// Unwrap is ErrFull: a record at its bound is full, and the node waits as for a full lock.
func (e *BoundError) Unwrap() error { return ErrFull }

// sizeOf is the size of v as stored (its JSON).
func sizeOf(v any) int {
	data, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(data)
}
