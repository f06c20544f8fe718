package pipeline_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// claimFleet is two nodes asked to reboot on one store: c1, a controller (galera min_passing=2
// of c1, c2: one at a time) and n1, a compute; both run quobyte (max_failing=1 of c1, n1, h1,
// h2: two at a time), and h1 and h2 reboot now, so quobyte has no room.
type claimFleet struct {
	ctl, cmp *machine
}

func newClaimFleet(t *testing.T) claimFleet {
	t.Helper()
	quobyte := pipelinetest.Service("quobyte", []string{"max_failing=1"}, "c1", "n1", "h1", "h2")
	galera := pipelinetest.Service("galera", []string{"min_passing=2"}, "c1", "c2")
	cmp := newMachine(t)
	cmp.health.Set(quobyte)
	cmp.health.SetOf("c2", galera)
	cmp.config.ClaimFor = 10 * time.Minute
	ctl := newMachine(t)
	ctl.store, ctl.clock = cmp.store, cmp.clock
	ctl.config.Node = "c1"
	ctl.config.ClaimFor = 10 * time.Minute
	ctl.health.Set(galera, quobyte)
	cmp.store.SetLimitSpec("auto")
	cmp.store.SetTrigger("n1", "", true)
	cmp.store.SetTrigger("c1", "", true)
	f := claimFleet{ctl: ctl, cmp: cmp}
	f.inFlight("h1", "h2")
	return f
}

// inFlight makes nodes the holders of the group's lock and the fleet's, replacing those there.
func (f claimFleet) inFlight(nodes ...string) {
	rec := lock.Record{Version: lock.Version}
	fleet := lock.Fleet{}
	for _, n := range nodes {
		rec.Holders = append(rec.Holders, lock.Holder{Node: n, Phase: lock.Rebooting, Since: f.cmp.clock.Now()})
		fleet = fleet.With(n, "default")
	}
	f.cmp.store.PutLock(rec)
	data, _ := fleet.Encode()
	f.cmp.store.Put("holders", string(data))
}

// run runs m's node on the fleet's store, with its agent as the local one.
func (f claimFleet) run(m *machine) (pipeline.Result, error) {
	f.cmp.store.Node = m.config.Node
	return m.run(m.t.Context())
}

func (f claimFleet) claims(t *testing.T) lock.Claims {
	t.Helper()
	c, err := f.cmp.store.Claims()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClaimsOfRoom: a node whose services allow fewer reboots at once (a controller, one at a
// time) that waits for room in a service it shares with nodes of more room (quobyte) claims it;
// when a reboot it counted ends, a node of more room leaves the place to it until it has looked
// (and only then); a claimant that looked and still does not fit, a claim that lapsed, and a
// node of as little room hold up nobody; a one-off run and a dry run claim nothing; a node that
// takes its place, or stops waiting for room, gives its claim up.
func TestClaimsOfRoom(t *testing.T) {
	f := newClaimFleet(t)
	if _, err := f.run(f.cmp); !errors.Is(err, ending.ErrUnhealthy) {
		t.Fatalf("compute, quobyte full: %v", err)
	}
	if c := f.claims(t); len(c.Claims) != 0 {
		t.Fatalf("a node with no less room than what it waits for claims: %+v", c)
	}
	if _, err := f.run(f.ctl); !errors.Is(err, ending.ErrUnhealthy) {
		t.Fatalf("controller, quobyte full: %v", err)
	}
	cl, ok := f.claims(t).Of("c1")
	if !ok || cl.AtOnce != 1 || !slices.Equal(cl.Services, []string{"quobyte"}) || !slices.Equal(cl.Seen, []string{"h1", "h2"}) || !cl.Until.Equal(f.cmp.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("controller's claim: %+v (%v)", cl, ok)
	}

	// Nothing ended yet: the claimant has nothing new to look at, and the claim holds up nobody
	// (quobyte is full anyway; health says so, not the claim).
	if _, err := f.run(f.cmp); !errors.Is(err, ending.ErrUnhealthy) || errors.Is(err, lock.ErrYields) {
		t.Fatalf("compute before any reboot ended: %v", err)
	}

	// h1 ends: the compute would fit, but leaves the place to the controller, until its claim
	// ends at the latest, and without joining the queue.
	f.inFlight("h2")
	res, err := f.run(f.cmp)
	if !errors.Is(err, lock.ErrYields) || !errors.Is(err, ending.ErrLockHeld) || !res.Recheck.Equal(cl.Until) || res.Seen.Queued || pipeline.WaitsForTurn(res, err) {
		t.Fatalf("compute once h1 ended: %v, recheck %v, queued %v", err, res.Recheck, res.Seen.Queued)
	}
	if q := f.cmp.queueOf(); len(q.Entries) != 0 {
		t.Fatalf("a yielding node joined the queue: %+v", q)
	}
	if _, held := f.cmp.lock().Holder("n1"); held {
		t.Fatal("the compute took the place it yields")
	}
	// The controller looks, takes the place, and gives its claim up.
	if res, err := f.run(f.ctl); err != nil || res.Outcome != pipeline.RebootStarted {
		t.Fatalf("controller once h1 ended: %v, %v", res, err)
	}
	if c := f.claims(t); len(c.Claims) != 0 {
		t.Fatalf("claim left once its node took a place: %+v", c)
	}
	if _, err := f.run(f.cmp); !errors.Is(err, ending.ErrUnhealthy) {
		t.Fatalf("compute after the controller went: %v", err)
	}
}

// TestClaimsHoldUpNobodyElse: the ends of a claim that must not hold a node back.
func TestClaimsHoldUpNobodyElse(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setUp func(t *testing.T, f claimFleet)
		yield bool
	}{
		{"the claimant looked after the reboot ended, and still does not fit", func(t *testing.T, f claimFleet) {
			// c2 (galera's other half) reboots too: the controller waits for it, not for quobyte.
			f.inFlight("h1", "h2", "c2")
			f.run(f.ctl)
			f.inFlight("h2", "c2")
			if _, err := f.run(f.ctl); !errors.Is(err, ending.ErrUnhealthy) {
				t.Fatalf("controller: %v", err)
			}
		}, false},
		{"the claim lapsed", func(t *testing.T, f claimFleet) {
			f.run(f.ctl)
			f.inFlight("h2")
			f.cmp.clock.Set(f.cmp.clock.Now().Add(10 * time.Minute))
		}, false},
		{"the claimant's clock a day ahead", func(t *testing.T, f claimFleet) {
			f.ctl.clock = pipelinetest.NewClock(f.cmp.clock.Now().AddDate(0, 0, 1))
			f.run(f.ctl)
			f.inFlight("h2")
		}, false},
		{"the claimant has no less room", func(t *testing.T, f claimFleet) {
			f.ctl.health.Set(pipelinetest.Service("quobyte", []string{"max_failing=1"}, "c1", "n1", "h1", "h2"), pipelinetest.Service("other", []string{"max_failing=1"}, "c1", "c2", "c3"))
			f.run(f.ctl)
			f.inFlight("h2")
		}, false},
		{"the claimant shares no service", func(t *testing.T, f claimFleet) {
			f.cmp.health.Set(pipelinetest.Service("nova", []string{"max_failing=1"}, "n1", "h1", "h2"))
			f.run(f.ctl)
			f.inFlight("h2")
		}, false},
		{"a claimant asked for nothing any more", func(t *testing.T, f claimFleet) {
			f.run(f.ctl)
			f.cmp.store.SetTrigger("c1", "", false)
			f.run(f.ctl)
			f.inFlight("h2")
		}, false},
		{"a one-off run claims nothing", func(t *testing.T, f claimFleet) {
			f.ctl.config.ClaimFor = 0
			f.run(f.ctl)
			f.inFlight("h2")
		}, false},
		{"a dry run claims nothing", func(t *testing.T, f claimFleet) {
			f.ctl.config.DryRun = true
			f.run(f.ctl)
			f.inFlight("h2")
		}, false},
		{"the claimant has not looked since", func(t *testing.T, f claimFleet) {
			f.run(f.ctl)
			f.inFlight("h2")
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newClaimFleet(t)
			tt.setUp(t, f)
			res, err := f.run(f.cmp)
			if errors.Is(err, lock.ErrYields) != tt.yield {
				t.Fatalf("compute: %v (%+v), yields: want %v; claims %+v", err, res, tt.yield, f.claims(t))
			}
			if !tt.yield && (err != nil || res.Outcome != pipeline.RebootStarted) {
				t.Fatalf("compute did not take its place: %v, %+v", err, res)
			}
		})
	}
}

// TestRoomOnlyNeedsRoom: a node held back by its own failing instance is not waiting for room,
// and claims nothing.
func TestRoomOnlyNeedsRoom(t *testing.T) {
	f := newClaimFleet(t)
	sick := pipelinetest.Service("galera", []string{"min_passing=2"}, "c1", "c2")
	sick.Instances[0].Checks[0].Status = "critical"
	f.ctl.health.Set(sick, pipelinetest.Service("quobyte", []string{"max_failing=1"}, "c1", "n1", "h1", "h2"))
	if _, err := f.run(f.ctl); !errors.Is(err, ending.ErrUnhealthy) {
		t.Fatalf("controller: %v", err)
	}
	if c := f.claims(t); len(c.Claims) != 0 {
		t.Fatalf("a node held back by its own health claims room: %+v", c)
	}
}
