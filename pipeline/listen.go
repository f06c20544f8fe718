package pipeline

import "context"

// Change is what the watches of a daemon reported changed, as a run listening hears it (see
// Listener): a set of the kinds below.
type Change uint8

// The kinds of change a run staying green waits on.
const (
	// ChangedHealth: what the health gate judges, the health of the node's services (a check, an
	// instance, a tag, the set of its services) or the reboots in flight (the fleet's holders,
	// the Python rebootmgr's lock).
	ChangedHealth Change = 1 << iota
	// ChangedStop: a stop flag, the fleet's or the group's.
	ChangedStop
	// ChangedTurn: this node's turn key told it of a place: it answers in the queue (see
	// place.PassTurns).
	ChangedTurn
)

// Has says whether c holds every kind of k.
func (c Change) Has(k Change) bool { return c&k == k }

// Listener is how a run hears what its daemon's watches report, without taking it from the
// daemon's loop, which judges every event after the run as it would have without it.
type Listener interface {
	// Wake is ready when something was reported since the last Take.
	Wake() <-chan struct{}
	// Take returns what changed since the last Take, and clears it; watching says whether every
	// watch read what it watches all the while, and does now: while one does not (it fails, or
	// has not started), a change may go unreported, and the run looks as one without a
	// listener does.
	Take() (changed Change, watching bool)
	// Close stops hearing; the watches go back to what the daemon holds for the run.
	Close()
}

// listenKey marks a run's context with the way to open a Listener.
type listenKey struct{}

// Listening is ctx for a run that may wait on what its daemon's watches report: listen opens a
// Listener, with the watches a run staying green depends on asking (the health of the node's
// services, the fleet's holders, the stop flags, its turn key), and Close gives them back. A
// run without one (a one-off run, a daemon that only ticks) polls.
func Listening(ctx context.Context, listen func() Listener) context.Context {
	return context.WithValue(ctx, listenKey{}, listen)
}

// listen opens the Listener of ctx; nil when the run has none (see Listening).
func listen(ctx context.Context) Listener {
	open, _ := ctx.Value(listenKey{}).(func() Listener)
	if open == nil {
		return nil
	}
	return open()
}
