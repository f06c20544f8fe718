package place

import (
	"slices"

	"github.com/rebootmgr/rebootmgr/lock"
)

// A node joins the group's queue with a write of its own ask, which checks the lock, the limit
// and the queue's record as it read them, and no other key (see store.Commit). So a change
// judged on a View read before a node's ask was written, and written after it, is written
// against the queue without that node, while the node's join was judged on the lock as that
// View holds it: neither write sees the other. A release then tells nobody of the place it
// opens, and the node, which saw the lock full, waits for a turn key nobody writes. The writer
// of such a change reads the asks as it writes it, and tells the nodes that joined meanwhile
// what the change calls for (see WokenLate).

// MayWakeLate says whether ch may call for a wake of a node that joined the queue after v was
// read (see WokenLate): it opens a place (a holder leaves, or the limit makes more room), or
// changes a holder's deadline. A node that joined judged the lock as v holds it: had a place been
// free for it then, it would have taken it rather than wait, so a change that opens none tells it
// nothing new. (Most changes open none: a node joining, keeping its turn, taking a place; they
// read no asks.)
func MayWakeLate(v View, ch Change) bool {
	limit := v.Limit
	if ch.Limit != nil {
		limit = *ch.Limit
	}
	opened := len(ch.Lock.Holders) < len(v.Lock.Holders) || lock.Free(ch.Lock, limit, v.GroupNodes) > lock.Free(v.Lock, v.Limit, v.GroupNodes)
	return opened || !sameDeadlines(v.Lock, ch.Lock)
}

// WokenLate are the wakes ch calls for (see Woken) among joined, the nodes whose asks were
// written after v was read, in the order they joined: they stand behind the queue ch writes,
// and are told as any node new at its front is. A node of joined that the queue ch writes
// holds already was judged with it.
func WokenLate(v View, ch Change, joined []lock.QueueEntry) []Wake {
	q := v.Queue
	if ch.Queue != nil {
		q = *ch.Queue
	}
	var late []string
	all := q
	all.Entries = slices.Clip(q.Entries)
	for _, e := range joined {
		if _, in := all.Place(e.Node); !in {
			all.Entries = append(all.Entries, e)
			late = append(late, e.Node)
		}
	}
	if len(late) == 0 {
		return nil
	}
	with := ch
	with.Queue = &all
	var out []Wake
	for _, w := range Woken(v, with) {
		if slices.Contains(late, w.Node) {
			out = append(out, w)
		}
	}
	return out
}
