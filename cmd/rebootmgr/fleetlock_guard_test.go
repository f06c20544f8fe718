package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestFleetLockNeedsAuthOrInsecure: without a token file the server does not start (exit 64,
// saying what to give) unless told --insecure-no-auth, which it warns of at start; both at
// once make no sense.
func TestFleetLockNeedsAuthOrInsecure(t *testing.T) {
	n := dev(t)
	tokens := filepath.Join(n.dir, "tokens")
	writeFile(t, tokens, "*=s3cret\n")
	for _, tt := range []struct {
		name    string
		environ map[string]string
		args    []string
		says    []string
	}{
		{"neither", nil, []string{"--listen", "127.0.0.1:0"}, []string{"--token-file", "--insecure-no-auth"}},
		{"neither, from the environment", map[string]string{"REBOOTMGR_LISTEN": "127.0.0.1:0"}, nil, []string{"--insecure-no-auth"}},
		{"both", nil, []string{"--listen", "127.0.0.1:0", "--token-file", tokens, "--insecure-no-auth"}, []string{"exclude each other"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A server that starts anyway serves until the time is up.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			n.expect(n.runWith(ctx, tt.environ, &fleettest.Log{}, "fleetlock", tt.args...), exitUsage, tt.says...)
		})
	}
	f := n.startFleetlock(map[string]string{"REBOOTMGR_INSECURE_NO_AUTH": "true"})
	fleettest.WaitSeen(t, f.log.Seen("level=WARN msg=\"no authentication (--insecure-no-auth)"), "the warning at start")
	if code, r := f.zincati(t, "pre-reboot", "host-1", "default"); code != 200 {
		t.Fatalf("pre-reboot without a token, --insecure-no-auth given: %d %+v", code, r)
	}
}

// TestFleetLockQueueFlood: a flood of pre-reboots with distinct ids, each refused for want of
// room, cannot grow the group's queue beyond what the server allows: ids over 63 characters
// are refused (bad_request), and past --max-queue entries a host is not queued (queue_full);
// no answer is a 500. The holders' steady-state and an operator's unlock --force work after it
// (before, some 1,300 ids of 253 characters made the queue too large for a transaction, and
// both failed).
func TestFleetLockQueueFlood(t *testing.T) {
	n := dev(t)
	n.put(n.keys().GroupLimit("default"), "2")
	f := n.startFleetlock(nil, "--max-queue", "20")
	for _, h := range []string{"holder-1", "holder-2"} {
		if code, r := f.zincati(t, "pre-reboot", h, "default"); code != 200 {
			t.Fatalf("pre-reboot of %s: %d %+v", h, code, r)
		}
	}
	flood := func(count, length int) map[string]int {
		kinds := map[string]int{}
		for i := range count {
			id := fmt.Sprintf("%0*d", length, i)
			code, r := f.zincati(t, "pre-reboot", id, "default")
			if code >= 500 {
				t.Fatalf("pre-reboot %d of the flood: %d %+v", i, code, r)
			}
			kinds[r.Kind]++
		}
		return kinds
	}
	if kinds := flood(1300, 253); kinds[fleetlock.KindBadRequest] != 1300 {
		t.Fatalf("ids of 253 characters: %v, want every one bad_request", kinds)
	}
	if kinds := flood(40, fleetlock.MaxHostID); kinds[fleetlock.KindLockHeld] != 20 || kinds[fleetlock.KindQueueFull] != 20 {
		t.Fatalf("ids of %d characters: %v, want 20 lock_held (queued) and 20 queue_full", fleetlock.MaxHostID, kinds)
	}
	pair, _, err := n.kv().Get(n.keys().GroupQueue("default"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if q, err := lock.DecodeQueue(pair.Value); err != nil || len(q.Entries) != 20 {
		t.Fatalf("queue after the flood: %d entries, %v", len(q.Entries), err)
	}
	if code, r := f.zincati(t, "steady-state", "holder-1", "default"); code != 200 {
		t.Fatalf("the holder's steady-state after the flood: %d %+v", code, r)
	}
	n.expect(n.run("unlock", "holder-2", "--force"), 0, "released the reboot lock of holder-2")
	if rec := n.lockRecord(); len(rec.Holders) != 0 {
		t.Fatalf("lock after the flood: %+v", rec)
	}
}
