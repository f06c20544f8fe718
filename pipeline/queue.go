package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// queueAfter keeps this node's entry in its group's queue as the run's end says, against the
// queue the run read first: it joins when the lock holds it back, is marked blocked by a gate of
// its own (health, window, disabled: it holds up nobody behind it, and keeps its place), and
// leaves when nothing asks it to reboot. Nothing is written when the entry is as it should be
// already, and a dry run writes nothing. A queue that cannot be written is logged: the queue
// orders the nodes, it never decides whether one may reboot. It says whether the node waits in
// the queue, not blocked, once done (see Seen.Queued).
func (p *Pipeline) queueAfter(ctx context.Context, res Result, err error) (queued bool) {
	_, in := p.queue.Place(p.Node)
	ready := p.queue.Ready(p.Node)
	if p.DryRun || ctx.Err() != nil {
		return ready
	}
	var change func(lock.Queue) lock.Queue
	after := ready
	switch {
	case err == nil && res.Outcome == NothingToDo && in:
		change, after = func(q lock.Queue) lock.Queue { return q.Leave(p.Node) }, false
	case errors.Is(err, place.ErrWaitInPlace):
		// It holds a place already.
	case errors.Is(err, errWorking):
		// It could take a place, and waits for what it must first: it keeps its turn, which also
		// answers a wake (see place.PassTurns). Its own write does not run it again: see
		// Working.
		now := p.Clock.Now()
		change, after = func(q lock.Queue) lock.Queue { return q.Keep(p.Node, now) }, true
	case errors.Is(err, lock.ErrQueued) && ready && (p.told || p.answerDue()):
		// A place is free and nodes before it go first: it says that it is there and waits (a
		// node woken that does not answer is passed over: see place.PassTurns). Whether it said so
		// since it was woken is judged by its own clock alone (see answerDue): its entry's time
		// and the moment the place opened are of two clocks. A node that comes to the front by
		// its own write is not followed by its own daemon (see Pipeline.changeLock).
		now := p.Clock.Now()
		change = func(q lock.Queue) lock.Queue { return q.Keep(p.Node, now) }
	case errors.Is(err, place.ErrForRoom):
		// Its health waits for its group's reboots in flight: it keeps its place, holding up
		// nobody, told when a place opens (see lock.ForRoom); it answers a wake, and says it is
		// there once in lock.AnswerWithin at most otherwise.
		if p.queue.WaitsForRoom(p.Node) && !p.told && !p.answerDue() {
			return true
		}
		now := p.Clock.Now()
		change, after = func(q lock.Queue) lock.Queue { return q.WaitRoom(p.Node, now) }, true
	case errors.Is(err, lock.ErrYields):
		// A node with less room goes first (see lock.Claims): the lock has room, and nobody
		// waits for this node's turn.
	case errors.Is(err, ending.ErrLockHeld) && !ready:
		now := p.Clock.Now()
		change, after = func(q lock.Queue) lock.Queue { return q.Join(p.Node, now) }, true
	case (ready || p.queue.WaitsForRoom(p.Node)) && ownGate(err) != "":
		// (One that waited for its group's reboots in flight and now meets a gate of its own,
		// its limit set to auto meanwhile, say, answers so too.)
		gate := ownGate(err)
		change, after = func(q lock.Queue) lock.Queue { return q.Block(p.Node, gate) }, false
	}
	if change == nil {
		return ready
	}
	return p.changeEntry(ctx, change, ready, after)
}

// changeEntry writes change to the group's queue for queueAfter, and says whether the node waits in
// the queue, not blocked, once done: after once written, ready (as the run read it) when the queue
// could not be written. A queue has room for every node of its group: one joining it writes an
// entry of its own (see lock.Ask), whatever the size of the queue's record; only a token that may
// not write those, with the record full, leaves it outside (an error here: it is told of no
// place, and looks at every change).
func (p *Pipeline) changeEntry(ctx context.Context, change func(lock.Queue) lock.Queue, ready, after bool) (queued bool) {
	if werr := p.changeQueue(ctx, change); werr != nil {
		p.Logger.Warn("could not keep this node's place in the group's queue: the order of the nodes waiting may be off, never their safety; trying again shortly", logkey.Err, werr)
		p.unwritten = true
		return ready
	}
	return after
}

// toldKey marks a run's context as one woken by its turn key.
type toldKey struct{}

// Told is ctx for a run that its turn key woke (a place opened for the node): the run answers in
// the queue whenever it waits there, ready, however lately its entry said so before. The process
// that woke it passes over a node whose entry did not change after the wake (see
// place.PassTurns), whatever the entry said just before it.
func Told(ctx context.Context) context.Context { return context.WithValue(ctx, toldKey{}, true) }

// IsTold says whether ctx is a run's that its turn key woke (see Told).
func IsTold(ctx context.Context) bool {
	told, _ := ctx.Value(toldKey{}).(bool)
	return told
}

// answerDue says whether this node's entry, as the run first read the queue, last said that it
// is there longer ago than a node told of a place has to answer (lock.AnswerWithin): by this
// node's own clock, with which it wrote the entry: a run that was not told of a place (see Told)
// writes at most once as long.
func (p *Pipeline) answerDue() bool {
	i, ok := p.queue.Place(p.Node)
	return ok && p.Clock.Now().Sub(p.queue.Entries[i].Since) >= lock.AnswerWithin
}

// keepTurn says, in the group's queue, that this node works towards its place (see
// lock.Queue.Keep), while it waits in a run, and returns the moment a place last opened as the
// queue it wrote says (see lock.Queue.Freed; ok false when it wrote nothing). A dry run writes
// nothing; a queue that cannot be written is logged (the queue orders the nodes, it never
// decides whether one may reboot).
func (p *Pipeline) keepTurn(ctx context.Context) (freed time.Time, ok bool) {
	if p.DryRun {
		return time.Time{}, false
	}
	now := p.Clock.Now()
	if err := p.changeQueue(ctx, func(q lock.Queue) lock.Queue {
		freed = q.Freed
		return q.Keep(p.Node, now)
	}); err != nil {
		p.Logger.Warn("could not keep this node's turn in the group's queue: a node behind it may go first", logkey.Err, err)
		return time.Time{}, false
	}
	return freed, true
}

// ownGate names the gate of the node's own that err ended at, "" for any other end: the gates a
// node waiting in the queue may meet while the others may go on.
func ownGate(err error) string {
	e, ok := ending.Of(err)
	if !ok {
		return ""
	}
	switch e.Err {
	case ending.ErrDisabled, ending.ErrOutsideWindow, ending.ErrUnhealthy:
		return e.Label
	}
	return ""
}

// WaitsForTurn says whether a run ended waiting for a place in its group's lock by count or
// order alone (the lock is full by its limit or its zones, or nodes before it in the queue go
// first), or for its group's reboots in flight alone (place.ErrForRoom), with the node in the
// queue to be told of it (res.Seen.Queued). Such a node has nothing
// to look at until a place opens for it (see place.Woken); a Python holder, a place held elsewhere, a
// holder waiting in place, or a node whose entry in the queue could not be written is no such
// end.
func WaitsForTurn(res Result, err error) bool {
	if !res.Seen.Queued {
		return false
	}
	return errors.Is(err, place.ErrForRoom) || errors.Is(err, ending.ErrLockHeld) && (errors.Is(err, lock.ErrFull) || errors.Is(err, lock.ErrQueued))
}
