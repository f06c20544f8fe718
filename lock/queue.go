package lock

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// QueueGrace is how long the first node of a group's queue that may go has to take a place
// that opened before those behind it may: a node whose daemon is gone never holds up the rest
// for longer.
const QueueGrace = 2 * time.Minute

// Queue is the order in which the nodes of a group asked for its lock: a node that passed its
// own gates and found the lock full joins it, and places are served in that order. A node
// blocked by its own gates since (health, window, disabled: Blocked) keeps its place but holds
// up nobody. Stored beside the group's lock and written, like it, only with check-and-set: its
// record holds its front, and the nodes that joined since wait in asks of their own (see Ask and
// Merged).
type Queue struct {
	Version int          `json:"version"`
	Entries []QueueEntry `json:"entries"`
	// Freed is when a place in the group's lock was last given back (see QueueGrace).
	Freed time.Time `json:"freed,omitzero"`
}

// QueueEntry is one node waiting for a place.
type QueueEntry struct {
	Node string `json:"node"`
	// Since is when it joined; its turn counts from there.
	Since time.Time `json:"since"`
	// Blocked names the gate of its own that holds it now ("" when only the lock does); a node
	// that let its turn pass is blocked "missed its turn" until it runs again.
	Blocked string `json:"blocked,omitempty"`
	// (A node's zone is not kept here: rebootmgr 0.1.0 reads this record and refuses a field it
	// does not know. Readers take the zones of the nodes waiting from the catalog.)
}

// MissedTurn is the Blocked of a node that did not take a place within QueueGrace of its turn.
const MissedTurn = "missed its turn"

// ForRoom is the Blocked of a node whose health fails only for its own group's reboots in
// flight (see health.Report.HeldBy): it holds up nobody, as every node blocked, but a place its
// group gives back is its chance, so it is told of it (see Front) and waits for that, quietly.
const ForRoom = "health: its group's reboots in flight"

// AnswerWithin is how long a node told that a place is its to look at (its turn key) has to
// answer in the queue: a daemon that runs does so within a moment; one that does not is passed
// over (see place.PassTurns).
const AnswerWithin = 10 * time.Second

// KeepEvery is how often a node working towards its place (its own waits before it takes it:
// the group's cooldown, stay-green) says so (see Keep): well within QueueGrace less Skew, so
// that a reader whose clock differs still sees its turn running.
const KeepEvery = 30 * time.Second

// DecodeQueue parses a stored queue strictly, as Decode a lock record.
func DecodeQueue(data []byte) (Queue, error) {
	return decodeNodeRecord(data, "queue", "entries", []string{"freed"},
		func(q Queue) int { return q.Version }, func(q Queue) []QueueEntry { return q.Entries }, func(e QueueEntry) string { return e.Node })
}

// Encode is the queue's record as stored, within MaxQueueBytes: a queue larger than that (read
// so, from a key written by hand or by another program) loses entries from its end, those
// blocked by their own gates first, then those that wait (their nodes join again when they ask
// again). The queue only orders the nodes waiting: it is never a reason for a write to fail.
// (The store writes into the record no more than fits: the rest of a long queue waits in its
// asks, see PlanQueue.)
func (q Queue) Encode() ([]byte, error) {
	data, _, err := q.encode()
	return data, err
}

// encode is Encode, and whether the record holds every entry.
func (q Queue) encode() ([]byte, bool, error) {
	if q.Version == 0 {
		q.Version = Version
	}
	if q.Entries == nil {
		q.Entries = []QueueEntry{}
	}
	data, err := json.Marshal(q)
	if err != nil || len(data) <= MaxQueueBytes {
		return data, true, err
	}
	q.Entries = slices.Clone(q.Entries)
	size := len(data)
	for _, blocked := range []bool{true, false} {
		for i := len(q.Entries) - 1; i >= 0 && size > MaxQueueBytes; i-- {
			if (q.Entries[i].Blocked != "") == blocked {
				size -= sizeOf(q.Entries[i]) + 1
				q.Entries = slices.Delete(q.Entries, i, i+1)
			}
		}
	}
	data, err = json.Marshal(q)
	return data, false, err
}

// Place is node's index in the queue, and whether it is in it.
func (q Queue) Place(node string) (int, bool) {
	i := slices.IndexFunc(q.Entries, func(e QueueEntry) bool { return e.Node == node })
	return i, i >= 0
}

// Ready says whether node waits in the queue, not blocked: the nodes a place opening may go to.
func (q Queue) Ready(node string) bool {
	i, ok := q.Place(node)
	return ok && q.Entries[i].Blocked == ""
}

// WaitsForRoom says whether node waits in the queue for its group's reboots in flight
// (ForRoom).
func (q Queue) WaitsForRoom(node string) bool {
	i, ok := q.Place(node)
	return ok && q.Entries[i].Blocked == ForRoom
}

// HearsOfPlaces says whether e's node is told when a place opens (see Front): it waits, not
// blocked, or waits for its group's reboots in flight.
func (e QueueEntry) HearsOfPlaces() bool { return e.Blocked == "" || e.Blocked == ForRoom }

func (q Queue) clone() Queue {
	return Queue{Version: q.Version, Entries: slices.Clone(q.Entries), Freed: q.Freed}
}

// Join puts node at the end of the queue, or, already in it, clears what blocked it (its turn
// starting at now, see Ahead). Entries
// blocked and silent for QueueExpiry leave (see QueueExpiry).
func (q Queue) Join(node string, now time.Time) Queue {
	out := q.clone()
	out.Entries = slices.DeleteFunc(out.Entries, func(e QueueEntry) bool {
		return e.Node != node && e.Blocked != "" && e.Since.Before(now.Add(-QueueExpiry))
	})
	if i, ok := out.Place(node); ok {
		if out.Entries[i].Blocked != "" {
			// Its gates held it until now: its turn starts now, not when it last said so.
			out.Entries[i].Blocked, out.Entries[i].Since = "", now.UTC()
		}
		return out
	}
	out.Entries = append(out.Entries, QueueEntry{Node: node, Since: now.UTC()})
	return out
}

// Keep is the queue once node said at now that it works towards its place: its turn starts
// again (its entry's Since is now: the order is the entries', Since only times the turn), and
// nothing blocks it; a node not in the queue joins it at the end.
func (q Queue) Keep(node string, now time.Time) Queue {
	out := q.Join(node, now)
	i, _ := out.Place(node)
	out.Entries[i].Since = now.UTC()
	return out
}

// WaitRoom is the queue once node said at now that it waits for its group's reboots in flight
// (ForRoom): it keeps its place (a node not in the queue joins it at the end), and its entry's
// Since says when it last answered (see place.PassTurns).
func (q Queue) WaitRoom(node string, now time.Time) Queue {
	out := q.Join(node, now)
	i, _ := out.Place(node)
	out.Entries[i].Blocked = ForRoom
	out.Entries[i].Since = now.UTC()
	return out
}

// Block marks node's entry blocked by gate; a node not in the queue is left out.
func (q Queue) Block(node, gate string) Queue {
	out := q.clone()
	if i, ok := q.Place(node); ok {
		out.Entries[i].Blocked = gate
	}
	return out
}

// Leave takes node out of the queue.
func (q Queue) Leave(node string) Queue {
	out := q.clone()
	out.Entries = slices.DeleteFunc(out.Entries, func(e QueueEntry) bool { return e.Node == node })
	return out
}

// Ahead are the nodes node must let take a place first at now: those before it in the queue
// (every one, for a node not in it) that are not blocked, that may go (may says whether an
// entry could take a place as the lock is: its zone), and whose turn has not passed; and the
// time the first of them misses its turn (zero when none is ahead). A turn's start was written
// with another node's clock: it is judged by when seen saw it (see Sightings).
func (q Queue) Ahead(node string, now time.Time, may func(QueueEntry) bool, seen *Sightings) (ahead []string, until time.Time) {
	end, ok := q.Place(node)
	if !ok {
		end = len(q.Entries)
	}
	for _, e := range q.Entries[:end] {
		if e.Blocked != "" || (may != nil && !may(e)) {
			continue
		}
		deadline := q.turn(e, now, seen).Add(QueueGrace)
		if !now.Before(deadline) {
			continue
		}
		if until.IsZero() || deadline.Before(until) {
			until = deadline
		}
		ahead = append(ahead, e.Node)
	}
	return ahead, until
}

// turn is when e's turn began, as seen judges it at now: when it joined (or last said it keeps
// its turn, see Keep) or when a place last opened, whichever is later, and never before the end
// of the last stop of the group seen saw (see Sightings.Stopped). The two were written by
// two clocks (the node's, and the releaser's): each is judged by its own sighting before they
// are compared, so that a node whose clock is behind still moves its turn on when it keeps it.
func (q Queue) turn(e QueueEntry, now time.Time, seen *Sightings) time.Time {
	start := seen.At("turn/"+e.Node, e.Since, now)
	if !q.Freed.IsZero() {
		if freed := seen.At("freed/"+e.Node, q.Freed, now); freed.After(start) {
			start = freed
		}
	}
	if from := seen.TurnsFrom(now); from.After(start) {
		start = from
	}
	return start
}

// Served is the queue once node takes a place at now: node leaves it, and the nodes before it
// that may go (see Ahead) whose turn passed are marked MissedTurn (each clears it when it runs
// again).
func (q Queue) Served(node string, now time.Time, may func(QueueEntry) bool, seen *Sightings) Queue {
	out := q.Leave(node)
	end, ok := q.Place(node)
	if !ok {
		end = len(q.Entries)
	}
	ahead, _ := q.Ahead(node, now, may, seen)
	for _, e := range q.Entries[:end] {
		if e.Blocked == "" && (may == nil || may(e)) && !slices.Contains(ahead, e.Node) {
			out = out.Block(e.Node, MissedTurn)
		}
	}
	return out
}

// ErrQueued means a place is free, but nodes before this one in its group's queue go first.
var ErrQueued = errors.New("waiting for its turn in the group's queue")

// QueuedError says which nodes go first, and when the first misses its turn.
type QueuedError struct {
	Place int // 1-based, among the nodes of the queue
	Free  int // places free now
	Ahead []string
	Until time.Time
}

func (e *QueuedError) Error() string {
	return fmt.Sprintf("%d place(s) free, and %d node(s) asked first and go first: %s (place %d in the group's queue; the first has until %s to take its place)",
		e.Free, len(e.Ahead), strings.Join(e.Ahead, ", "), e.Place, e.Until.UTC().Format(time.RFC3339))
}

func (e *QueuedError) Unwrap() error { return ErrQueued }

// Equal says whether two queues hold the same.
func (q Queue) Equal(o Queue) bool {
	return q.Freed.Equal(o.Freed) && slices.EqualFunc(q.Entries, o.Entries, func(a, b QueueEntry) bool {
		return a.Node == b.Node && a.Since.Equal(b.Since) && a.Blocked == b.Blocked
	})
}

// Free is how many places a queue's nodes wait for in rec under limit l, in a group of
// groupNodes nodes: the places free (one under auto, where the rules, not a count, say how many
// may go), none when rec is full.
func Free(rec Record, l Limit, groupNodes int) int {
	if places := l.Places(groupNodes, true); places != math.MaxInt {
		return max(0, places-len(rec.Holders))
	}
	return 1
}

// Front are the nodes of the queue that places open in rec (under limit l, in a group of
// groupNodes nodes whose zones are zones) go to: the first that may go (not blocked, and let in
// by the zones rec has), one per free place (see Free: the takers), and as many again after
// them, who go when those let their turn pass; and as many again of the first nodes that wait
// for the group's reboots in flight (ForRoom), whose chance a place opening may be. Only these
// need to hear that a place opened; the rest of the queue waits on.
func (q Queue) Front(rec Record, l Limit, groupNodes int, zones map[string]string) []string {
	free := Free(rec, l, groupNodes)
	var out []string
	ready, room := 0, 0
	for _, e := range q.Entries {
		if ready >= 2*free && room >= 2*free {
			break
		}
		if _, holds := rec.Holder(e.Node); holds || rec.ZoneError(e.Node, zones[e.Node], l.PerZone) != nil {
			continue
		}
		switch {
		case e.Blocked == "" && ready < 2*free:
			ready++
		case e.Blocked == ForRoom && room < 2*free:
			room++
		default:
			continue
		}
		out = append(out, e.Node)
	}
	return out
}
