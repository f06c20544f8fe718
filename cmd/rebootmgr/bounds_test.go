package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// longName is a valid node name of n characters, distinct by i.
func longName(i, n int) string {
	s := fmt.Sprintf("n%05d-", i)
	return s + strings.Repeat("x", n-len(s))
}

// TestRecordsStayWithinTheirBounds: every record a place is taken and given back with has a
// bound. A queue stored far larger than its bound (390 kB, 4,500 valid entries: a transaction
// with it is more than Consul takes) does not wedge its group: the next write cuts it to its
// bound, and a node still takes its place, reboots and gives it back. A node joining a queue
// whose record is at its bound waits behind it, in an ask of its own. A lock record at its bound
// takes no more holders (the node waits, as for a full lock), and its holders still give their
// places back.
func TestRecordsStayWithinTheirBounds(t *testing.T) {
	nodes := cluster(t, []string{"", ""})
	first, n1 := nodes[0], nodes[1]
	queueKey := first.keys().GroupQueue("default")

	t.Run("a queue stored past its bound", func(t *testing.T) {
		q := lock.Queue{Version: lock.Version}
		for i := range 4500 {
			q.Entries = append(q.Entries, lock.QueueEntry{Node: longName(i, 40), Since: time.Now().Add(-time.Minute), Blocked: "health"})
		}
		data, _ := q.Encode() // cut to its bound: write the whole by hand
		q.Version = lock.Version
		if len(data) > lock.MaxQueueBytes {
			t.Fatalf("encoded queue of %d bytes, over its bound %d", len(data), lock.MaxQueueBytes)
		}
		raw := fmt.Sprintf(`{"version":1,"entries":[`)
		for i, e := range q.Entries {
			if i > 0 {
				raw += ","
			}
			raw += fmt.Sprintf(`{"node":%q,"since":%q,"blocked":"health"}`, e.Node, e.Since.UTC().Format(time.RFC3339Nano))
		}
		raw += "]}"
		if len(raw) < 350<<10 {
			t.Fatalf("the queue written by hand is only %d bytes", len(raw))
		}
		first.put(queueKey, raw)
		n1.put(n1.keys().RebootRequired(n1.agent.Node), "")
		n1.expect(n1.run("reboot", "--check-triggers"), 0, "reboot started")
		n1.boot()
		n1.expect(n1.run("reboot", "--check-triggers"), 0, "reboot finished")
		if got := first.get(queueKey); got == nil || len(got.Value) > lock.MaxQueueBytes {
			t.Fatalf("the queue once the place was given back: %d bytes, want at most %d", len(got.Value), lock.MaxQueueBytes)
		}
	})

	t.Run("a queue record at its bound", func(t *testing.T) {
		putHolder(t, first, lock.Holder{Node: "x9", Phase: lock.Preparing, Since: time.Now()})
		q := lock.Queue{Version: lock.Version}
		data, _ := q.Encode()
		for len(data) < lock.MaxQueueBytes-300 {
			q.Entries = append(q.Entries, lock.QueueEntry{Node: longName(len(q.Entries), 200), Since: time.Now()})
			data, _ = q.Encode()
		}
		first.put(queueKey, string(data))
		n1.put(n1.keys().RebootRequired(n1.agent.Node), "")
		r := n1.run("reboot", "--check-triggers")
		n1.expect(r, exitLockHeld, "x9")
		got := queueOf(t, first)
		if len(got.Entries) != len(q.Entries)+1 || got.Entries[len(q.Entries)].Node != n1.agent.Node {
			t.Fatalf("queue of %d entries, want the %d there before, then %s", len(got.Entries), len(q.Entries), n1.agent.Node)
		}
		if record := first.get(queueKey); len(record.Value) > lock.MaxQueueBytes {
			t.Fatalf("the queue record holds %d bytes, past its bound", len(record.Value))
		}
		first.put(queueKey, `{"version":1,"entries":[]}`)
		if _, err := first.kv().DeleteTree(first.keys().GroupAsks("default"), nil); err != nil {
			t.Fatal(err)
		}
		releaseHolder(t, first, "x9")
	})

	t.Run("a lock record at its bound", func(t *testing.T) {
		rec := lock.Record{Version: lock.Version}
		for i, long := 0, true; ; i++ {
			h := lock.Holder{Node: longName(i, 250), Phase: lock.Rebooting, Since: time.Now(), TriggeredBy: strings.Repeat("why ", 30)}
			if !long {
				// Entries no larger than the one n1 would add.
				h = lock.Holder{Node: fmt.Sprintf("%c%02d", 'a'+i/100%26, i%100), Phase: lock.Preparing, Since: time.Now(), Updated: time.Now()}
			}
			next, err := rec.Acquire(h, 100000)
			switch {
			case err != nil && long:
				long = false
				continue
			case err != nil:
			default:
				rec = next
				continue
			}
			break
		}
		data, _ := rec.Encode()
		first.put(first.keys().Lock(), string(data))
		first.expect(first.run("limit", "default", "100000"), 0, "100000 at a time")
		r := n1.run("reboot", "--check-triggers")
		n1.expect(r, exitLockHeld, "bound")
		gone := rec.Holders[0].Node
		first.expect(first.run("unlock", gone, "--force"), 0, "released")
		if _, holds := first.lockRecord().Holder(gone); holds {
			t.Fatalf("%s still holds a place once unlocked", gone)
		}
	})
}
