package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestRequestAgainDuringTheReboot: a node asked to reboot again while its reboot is under way,
// even with the very value its request had (Consul keeps a key's index then), reboots a second
// time: the reboot took its request as it started, so the request written after it is a new
// one, and the end of the first reboot keeps it. rebootmgr trigger, on a request the reboot
// under way took, writes a new one and says so.
func TestRequestAgainDuringTheReboot(t *testing.T) {
	const value = "kernel update"
	tests := []struct {
		name string
		// rebooting asks again while the node is down; finishing, when set, is a post-boot task
		// that asks again. kept is the value kept after the first reboot.
		rebooting func(t *testing.T, n *testNode)
		finishing func(n *testNode) string
		kept      string
	}{
		{name: "the same value while rebooting", rebooting: func(t *testing.T, n *testNode) {
			n.put(n.keys().RebootRequired("n1"), value)
		}, kept: value},
		{name: "the same value by a post-boot task", finishing: func(n *testNode) string {
			return fmt.Sprintf("%s kv put -http-addr=%s %s '%s' >/dev/null", consultest.Binary(n.t), n.agent.HTTPAddr, n.keys().RebootRequired("n1"), value)
		}, kept: value},
		{name: "rebootmgr trigger while rebooting", rebooting: func(t *testing.T, n *testNode) {
			n.expect(n.run("trigger", "n1", "--reason", "kernel 6.2"), 0, "asked n1 again: the earlier request was taken by the reboot under way", "kernel 6.2")
		}, kept: "kernel 6.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			n.put(n.keys().RebootRequired("n1"), value)
			if tt.finishing != nil {
				n.task("post", "10-ask-again", tt.finishing(n))
			}
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
			if tt.rebooting != nil {
				tt.rebooting(t, n)
			}
			n.boot()
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
			pair := n.get(n.keys().RebootRequired("n1"))
			if pair == nil || !strings.HasPrefix(string(pair.Value), tt.kept) {
				t.Fatalf("the request made during the reboot was lost: %v", pair)
			}
			n.task("post", "10-ask-again", "true")
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot started")
			if got := n.rebootCount(); got != 2 {
				t.Fatalf("reboot command ran %d times, want 2", got)
			}
		})
	}
}

// TestTriggerWhileAsked: rebootmgr trigger on a request that still asks writes nothing and
// says so; on one the node's reboot under way recorded (as a rebootmgr that did not take it
// wrote its entry), it writes a new one, which the end of that reboot keeps.
func TestTriggerWhileAsked(t *testing.T) {
	tests := []struct {
		name string
		// holder is the node's entry, its trigger index the request's plus offset; none when
		// phase is "".
		phase  lock.Phase
		offset uint64
		again  bool
	}{
		{name: "no reboot under way"},
		{name: "preparing", phase: lock.Preparing},
		{name: "rebooting, another request's index", phase: lock.Rebooting, offset: 1000},
		{name: "rebooting, this request's index", phase: lock.Rebooting, again: true},
		{name: "finishing, this request's index", phase: lock.Finishing, again: true},
	}
	n := dev(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanKV(t, n)
			n.expect(n.run("trigger", "n1", "--reason", "kernel 6.1"), 0, "asked n1 to reboot")
			before := n.get(n.keys().RebootRequired("n1"))
			if tt.phase != "" {
				h := lock.Holder{Node: "n1", Phase: tt.phase, Since: time.Now(), TriggerIndex: before.ModifyIndex + tt.offset}
				rec, _ := lock.Record{Version: lock.Version}.Acquire(h, 1)
				data, _ := rec.Encode()
				fleet, _ := lock.Fleet{Version: lock.Version}.With("n1", lock.DefaultGroup).Encode()
				n.put(n.keys().Lock(), string(data))
				n.put(n.keys().Holders(), string(fleet))
			}
			r := n.run("trigger", "n1", "--reason", "kernel 6.2")
			after := n.get(n.keys().RebootRequired("n1"))
			if !tt.again {
				n.expect(r, 0, "n1 was already asked to reboot", "kernel 6.1")
				if after.ModifyIndex != before.ModifyIndex {
					t.Fatalf("a request that still asks was written again: %s", after.Value)
				}
				return
			}
			n.expect(r, 0, "asked n1 again: the earlier request was taken by the reboot under way", "kernel 6.2")
			if after.ModifyIndex == before.ModifyIndex || !strings.HasPrefix(string(after.Value), "kernel 6.2") {
				t.Fatalf("the request taken was not written again: %s at %d", after.Value, after.ModifyIndex)
			}
		})
	}
}
