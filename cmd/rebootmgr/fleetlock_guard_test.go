package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
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
	if q := queueOf(t, n); len(q.Entries) != 20 {
		t.Fatalf("queue after the flood: %d entries", len(q.Entries))
	}
	if code, r := f.zincati(t, "steady-state", "holder-1", "default"); code != 200 {
		t.Fatalf("the holder's steady-state after the flood: %d %+v", code, r)
	}
	n.expect(n.run("unlock", "holder-2", "--force"), 0, "released the reboot lock of holder-2")
	if rec := n.lockRecord(); len(rec.Holders) != 0 {
		t.Fatalf("lock after the flood: %+v", rec)
	}
}

// TestFleetLockHostNamedLikeANode: a FleetLock host and a node of the same name are never taken
// for each other. The host took its place before rebootmgr's daemon ran on node n1: the daemon,
// asked to reboot n1, neither finishes nor gives back the host's place, and waits, saying why,
// while the group's one place stays taken (a second host waits too); status and check show the
// place as the host's. Once the daemon is registered, a FleetLock request named n1 is refused
// (id_in_use). The host's finished reboot does not hold n1 back by its min reboot interval:
// n1 reboots once the host's steady-state has given the place back (and h2, queued first, has
// had its turn).
func TestFleetLockHostNamedLikeANode(t *testing.T) {
	n := dev(t)
	f := n.startFleetlock(nil)
	if code, r := f.zincati(t, "pre-reboot", "n1", "default"); code != 200 {
		t.Fatalf("pre-reboot of a host named n1, no daemon on n1: %d %+v", code, r)
	}
	d := n.startDaemon("--min-reboot-interval", "1h")
	n.put(n.keys().RebootRequired("n1"), "kernel")
	fleettest.WaitSeen(t, d.Log.Seen("a FleetLock host named n1 holds a place"), "the daemon waiting for the host")
	if h := n.holder("n1"); !h.FleetLock() || h.Phase != lock.Rebooting || n.rebootCount() != 0 {
		t.Fatalf("the daemon took the host's place for its own: %+v, %d reboots", n.lockRecord(), n.rebootCount())
	}
	if code, r := f.zincati(t, "pre-reboot", "h2", "default"); code != 423 || r.Kind != fleetlock.KindLockHeld {
		t.Fatalf("a second host while the host n1 reboots: %d %+v", code, r)
	}
	if code, r := f.zincati(t, "pre-reboot", "n1", "default"); code != 409 || r.Kind != fleetlock.KindIDInUse {
		t.Fatalf("a FleetLock request named like a node whose daemon runs: %d %+v", code, r)
	}

	st := n.run("status", "--json")
	var status struct {
		Holders []struct {
			Node      string `json:"node"`
			FleetLock bool   `json:"fleetlock"`
		} `json:"holders"`
		Nodes []struct {
			Node      string `json:"node"`
			FleetLock bool   `json:"fleetlock"`
			Blocked   *struct {
				Gate   string `json:"gate"`
				Reason string `json:"reason"`
			} `json:"blocked"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &status); err != nil {
		t.Fatalf("status --json: %v\n%s", err, st.stdout)
	}
	if len(status.Holders) != 1 || !status.Holders[0].FleetLock {
		t.Fatalf("status's holders: %+v", status.Holders)
	}
	for _, row := range status.Nodes {
		if row.Node == "n1" && (!row.FleetLock || row.Blocked == nil || row.Blocked.Gate != "lock" || !strings.Contains(row.Blocked.Reason, "FleetLock host named n1")) {
			t.Fatalf("status's row of n1: %+v", row)
		}
	}
	n.expect(n.run("status"), 0, "n1 (FleetLock host) rebooting")
	n.expect(n.run("check"), exitLockHeld, "a FleetLock host named n1 holds a place")

	// The host gives its place back; h2, first in the queue, goes; then n1.
	for _, step := range []struct{ endpoint, id string }{{"steady-state", "n1"}, {"pre-reboot", "h2"}, {"steady-state", "h2"}} {
		if code, r := f.zincati(t, step.endpoint, step.id, "default"); code != 200 {
			t.Fatalf("%s of %s: %d %+v", step.endpoint, step.id, code, r)
		}
	}
	waitFile(t, n.reboots)
	if h := n.holder("n1"); h.FleetLock() || h.Phase != lock.Rebooting {
		t.Fatalf("n1's own reboot: %+v", n.lockRecord())
	}
}
