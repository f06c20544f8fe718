package place

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// WokeEntries are the entries of the nodes that ch, written against v, told that a place is
// theirs to look at (see Woken), as ch wrote them.
func WokeEntries(v View, ch Change) []lock.QueueEntry {
	if ch.Untold {
		return nil
	}
	q := v.Queue
	if ch.Queue != nil {
		q = *ch.Queue
	}
	var out []lock.QueueEntry
	for _, w := range Woken(v, ch) {
		if i, in := q.Place(w.Node); in && w.Place {
			out = append(out, q.Entries[i])
		}
	}
	return out
}

// errNothingToPass ends a pass that finds every node it woke answered; errPassLater puts off one
// made while its group is stopped, or just after.
var (
	errNothingToPass = errors.New("every node woken answered")
	errPassLater     = errors.New("stopped: no node answers a wake")
)

// PassTurns is what the process that woke nodes for a place (see Woken) does once they had
// lock.AnswerWithin to answer: a node whose daemon runs answers at once, whether it takes the
// place, waits for its turn or works towards it (its entry says so: see lock.Queue.Keep), or is
// held by its own gates (blocked). A node of woke whose entry is still as it was woken, while a
// place is free, has no daemon to answer: it is marked as having missed its turn, and holds up
// nobody until it runs again; under a stop flag nobody is passed over, since no node answers
// then: the pass waits, and is made once the nodes had lock.AnswerWithin from the resume to
// answer, as the caller's sightings saw it (see lock.Sightings.Stopped), at the caller's next
// pass. The nodes the change brings to the front hear of it, and so do the
// more ready nodes after them (more grows with each pass the caller makes: however many daemons
// are gone at the queue's front, a few passes reach one that runs). It returns the entries its
// change woke, for the next pass (none: nothing was left to pass), or woke itself when the pass
// waits for a resume.
func PassTurns(ctx context.Context, locks Locks, log *slog.Logger, woke []lock.QueueEntry, more int, now time.Time) ([]lock.QueueEntry, error) {
	var passed []string
	v, ch, err := ChangeLock(ctx, locks, log, func(v View) (Change, error) {
		if v.Stop.Set || now.Sub(v.Sightings.TurnsFrom(now)) < lock.AnswerWithin {
			// Stopped, no node goes on to a place, and none answers a wake: nobody is passed
			// over for it (each answers at its first run after the resume).
			return Change{}, errPassLater
		}
		passed = silent(v, woke)
		if len(passed) == 0 || lock.Free(v.Lock, v.Limit, v.GroupNodes) == 0 || v.LegacyHeld() != "" {
			// (The Python rebootmgr holding the lock keeps every node from a place: a node that
			// waits for it looks at the lock, not at its turn key, and its silence is no sign
			// that its daemon is gone.)
			return Change{}, errNothingToPass
		}
		q := v.Queue
		for _, n := range passed {
			q = q.Block(n, lock.MissedTurn)
		}
		return Change{Lock: v.Lock, Queue: &q, Wake: readyAfter(q, v.Lock, woke, more)}, nil
	})
	if errors.Is(err, errNothingToPass) {
		return nil, nil
	}
	if errors.Is(err, errPassLater) {
		return woke, nil
	}
	if err != nil {
		return nil, err
	}
	log.Info("nodes woken for a place did not answer: passed over", logkey.Nodes, passed)
	return WokeEntries(v, ch), nil
}

// silent are the nodes of woke still in v's queue as they were woken: ready (or waiting for
// their group's reboots in flight), with the same Since, and no place, while their zone may
// go. A node that a zone rebooting since keeps out (a node of its zone took a place first)
// could not take one: it is no sign that its daemon is gone.
func silent(v View, woke []lock.QueueEntry) []string {
	var out []string
	admits := zoneAdmits(v)
	for _, w := range woke {
		i, in := v.Queue.Place(w.Node)
		if !in {
			continue
		}
		e := v.Queue.Entries[i]
		if _, holds := v.Lock.Holder(w.Node); !holds && e.HearsOfPlaces() && e.Since.Equal(w.Since) && admits(e) {
			out = append(out, w.Node)
		}
	}
	return out
}

// readyAfter are up to n ready nodes of q, in its order, that hold no place in rec and are not
// among woke.
func readyAfter(q lock.Queue, rec lock.Record, woke []lock.QueueEntry, n int) []string {
	var out []string
	for _, e := range q.Entries {
		if len(out) >= n {
			break
		}
		_, holds := rec.Holder(e.Node)
		if holds || e.Blocked != "" || slices.ContainsFunc(woke, func(w lock.QueueEntry) bool { return w.Node == e.Node }) {
			continue
		}
		out = append(out, e.Node)
	}
	return out
}

// PassReach is how many ready nodes of the queue the pass numbered round (from 0) of those a
// release told tells besides (see PassTurns): more at each, 32 at most.
func PassReach(round int) int { return min(4<<min(round, 8), 32) }
