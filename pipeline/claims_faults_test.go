package pipeline_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// TestPythonMarkerOfAnotherGroupHoldsUpNobody: a claimant counts a reboot of the Python
// rebootmgr through its own group's marker, which a node of another group does not read
// (store.Consul.View reads the markers of its own group only). Were it part of the claim, that
// reboot would be "ended" for every other group's node at once, for as long as the marker
// stays, and they would yield to a claimant that looks at every tick and cannot go. A claim
// holds the holders of the fleet's record only, which every node reads alike.
//
// The in-memory store reads every legacy key for its one group; the other group's View is made
// here as store.Consul.View makes it: the same read without the claimant group's marker.
func TestPythonMarkerOfAnotherGroupHoldsUpNobody(t *testing.T) {
	quobyte := pipelinetest.Service("quobyte", []string{"max_failing=1"}, "c1", "n1", "h1", "h2")
	galera := pipelinetest.Service("galera", []string{"min_passing=2"}, "c1", "c2")
	ctl := newMachine(t) // c1, group "ctl" (emulated)
	ctl.config.Node = "c1"
	ctl.config.ClaimFor = 10 * time.Minute
	ctl.health.Set(galera, quobyte)
	ctl.store.SetLimitSpec("auto")
	ctl.store.SetTrigger("c1", "", true)
	st := ctl.store
	st.Node = "c1"

	// h1 (group compute) reboots through rebootmgr; c2 (group ctl) through the Python rebootmgr,
	// marked in ctl_reboot_in_progress.
	fleet := lock.Fleet{}.With("h1", "compute")
	data, _ := fleet.Encode()
	st.Put("holders", string(data))
	st.SetLegacy("ctl_reboot_in_progress", "c2", true)

	if _, err := ctl.run(t.Context()); !errors.Is(err, ending.ErrUnhealthy) {
		t.Fatalf("controller (c2 down for the Python rebootmgr): %v", err)
	}
	cl, ok := mustClaims(t, st).Of("c1")
	if !ok {
		t.Fatal("controller claimed nothing")
	}
	if len(cl.Seen) != 1 || cl.Seen[0] != "h1" {
		t.Fatalf("the claim counts what other groups cannot read: %+v", cl)
	}

	cmpHealth := &pipelinetest.Health{}
	cmpHealth.Set(quobyte)
	start := ctl.clock.Now()
	for _, after := range []time.Duration{0, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, 3 * time.Hour} {
		ctl.clock.Set(start.Add(after))
		// The controller's daemon looks at every tick: nothing changed for it.
		if _, err := ctl.run(t.Context()); !errors.Is(err, ending.ErrUnhealthy) {
			t.Fatalf("controller at +%v: %v", after, err)
		}
		// n1, group compute: its View, as Consul gives it, has no ctl_reboot_in_progress.
		v, err := st.View(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		v.Group = "compute"
		delete(v.Legacy, "ctl_reboot_in_progress")
		rep, _ := cmpHealth.Check(t.Context(), "n1", v.InFlight("n1"))
		if !rep.OK() {
			t.Fatalf("compute's health at +%v: %s", after, rep.Reason())
		}
		if err := place.YieldIn(v, "n1", rep, ctl.clock.Now()); errors.Is(err, lock.ErrYields) {
			t.Errorf("at +%v the compute still yields to a claimant that has looked at every tick and cannot go (nothing it counted ended): %v", after, err)
		}
	}
}

func mustClaims(t *testing.T, st *pipelinetest.Store) lock.Claims {
	t.Helper()
	c, err := st.Claims()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRunWithoutClaimsTakesAClaimAway: a node whose daemon claimed and now runs without claims
// (restarted with --watch=false) takes its claim away when it has nothing to do, and so does
// Withdraw.
func TestRunWithoutClaimsTakesAClaimAway(t *testing.T) {
	f := newClaimFleet(t)
	f.run(f.ctl)
	if _, ok := f.claims(t).Of("c1"); !ok {
		t.Fatal("no claim")
	}
	f.ctl.config.ClaimFor = 0
	// A one-off run that waits for room too leaves the daemon's claim as it is.
	if _, err := f.run(f.ctl); !errors.Is(err, ending.ErrUnhealthy) {
		t.Fatalf("controller's one-off run: %v", err)
	}
	if _, ok := f.claims(t).Of("c1"); !ok {
		t.Fatal("a one-off run waiting for room took the daemon's claim away")
	}
	f.ctl.store.SetTrigger("c1", "", false)
	if res, err := f.run(f.ctl); err != nil || res.Outcome != pipeline.NothingToDo {
		t.Fatalf("controller: %v %v", res, err)
	}
	if _, ok := f.claims(t).Of("c1"); ok {
		t.Errorf("a node with nothing to do still has its claim in the record: %+v", f.claims(t))
	}
	// A daemon that claims, then stops, takes its claim away.
	f.ctl.config.ClaimFor = 10 * time.Minute
	f.ctl.store.SetTrigger("c1", "", true)
	f.run(f.ctl)
	if _, ok := f.claims(t).Of("c1"); !ok {
		t.Fatal("no claim")
	}
	if err := f.ctl.pipeline().Withdraw(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.claims(t).Of("c1"); ok {
		t.Errorf("Withdraw left the claim in the record: %+v", f.claims(t))
	}
}
