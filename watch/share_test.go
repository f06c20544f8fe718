package watch

import (
	"context"
	"fmt"
	"hash/fnv"
	"testing"
	"time"
)

// TestReadsTakesTurns: the daemons of a service of n nodes take turns. Every node reads once in
// any ceil(n/2) ticks in a row, so that about two read at each tick whatever n: the slots are
// a hash's, so some ticks have more and some none (about one in seven, as for a Poisson count
// of mean 2), never many.
func TestReadsTakesTurns(t *testing.T) {
	for _, tt := range []struct {
		n      int
		period int64
		// most readers at one tick, and the share of ticks no node reads at, at most.
		most  int
		empty float64
	}{
		{1, 1, 1, 0},
		{2, 1, 2, 0},
		{3, 2, 2, 0},
		{10, 5, 4, 0.2},
		{100, 50, 7, 0.2},
		{10_000, 5_000, 10, 0.16},
	} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := Period(tt.n); got != tt.period {
				t.Fatalf("Period(%d) = %d, want %d", tt.n, got, tt.period)
			}
			for _, start := range []int64{0, 5_912_345, 5_912_345 + tt.period/2} {
				perTick := make([]int, tt.period)
				for i := range tt.n {
					node := fmt.Sprintf("n%04d", i+1)
					reads := 0
					for k := range tt.period {
						if Reads(node, "cassandra", tt.n, start+k) {
							perTick[k]++
							reads++
						}
					}
					if reads != 1 {
						t.Fatalf("%s reads %d times in the %d ticks from %d, want once", node, reads, tt.period, start)
					}
				}
				most, empty := 0, 0
				for _, c := range perTick {
					most = max(most, c)
					if c == 0 {
						empty++
					}
				}
				if mean := float64(tt.n) / float64(tt.period); mean < 1.9 && tt.n >= 10 {
					t.Fatalf("%.2f readers a tick on average", mean)
				}
				if most > tt.most || float64(empty) > tt.empty*float64(tt.period) {
					t.Fatalf("from tick %d: %d readers at most at one tick (want at most %d), %d of %d ticks without any (want at most %.0f%%)",
						start, most, tt.most, empty, tt.period, 100*tt.empty)
				}
			}
		})
	}
}

// TestReadsIsItsArguments: the slot depends on the node and on the service, and on nothing else.
func TestReadsIsItsArguments(t *testing.T) {
	const n = 1000
	slotOf := func(node, service string) int64 {
		for k := range Period(n) {
			if Reads(node, service, n, k) {
				return k
			}
		}
		t.Fatalf("%s never reads %s", node, service)
		return -1
	}
	if slotOf("n0001", "cassandra") != slotOf("n0001", "cassandra") {
		t.Fatal("the same node and service read at two slots")
	}
	differ := func(f func(i int) (string, string)) bool {
		first := slotOf(f(0))
		for i := 1; i < 20; i++ {
			if slotOf(f(i)) != first {
				return true
			}
		}
		return false
	}
	if !differ(func(i int) (string, string) { return fmt.Sprintf("n%04d", i), "cassandra" }) {
		t.Fatal("20 nodes read cassandra at one slot")
	}
	if !differ(func(i int) (string, string) { return "n0001", fmt.Sprintf("svc-%d", i) }) {
		t.Fatal("one node reads 20 services at one slot")
	}
}

// TestHealthHold: the watches of a node with something to do ask; of a node that waits, are
// held; of an idle node that evaluates, the set of its services asks and each service's only
// at its turn, once a tick (a second evaluation in the same tick asks nothing more), and a turn
// the node did not evaluate in is taken at its next evaluation.
func TestHealthHold(t *testing.T) {
	const interval = 5 * time.Minute
	const n = 100
	h := NewHealthHold("n0007", interval, HealthAsks)
	pause := h.Service("cassandra")
	h.Saw("cassandra", n)
	var turn int64 = -1
	for k := range Period(n) {
		if Reads("n0007", "cassandra", n, 1_000+k) {
			turn = 1_000 + k
		}
	}
	at := func(tick int64) time.Time { return time.Unix(0, tick*int64(interval)).Add(time.Minute) }
	for _, step := range []struct {
		what        string
		mode        HealthMode
		tick        int64
		set, health bool // held
	}{
		{"something to do", HealthAsks, turn - 3, false, false},
		{"waits", HealthHeld, turn - 3, true, true},
		{"idle, evaluates, not its turn", HealthShares, turn - 2, false, true},
		{"idle", HealthHeld, turn - 2, true, true},
		{"idle, evaluates at its turn", HealthShares, turn, false, false},
		{"idle", HealthHeld, turn, true, true},
		{"idle, evaluates again in the same tick", HealthShares, turn, false, true},
		{"idle, evaluates after its turn", HealthShares, turn + 1, false, true},
		{"idle, evaluates at its next turn", HealthShares, turn + Period(n), false, false},
		{"idle, evaluates, not its turn", HealthShares, turn + Period(n) + 5, false, true},
		{"idle, misses its turn, evaluates after", HealthShares, turn + 2*Period(n) + 1, false, false},
	} {
		h.Set(step.mode, at(step.tick))
		if h.Services().Held() != step.set || pause.Held() != step.health {
			t.Fatalf("%s (tick %d, turn at %d): the set of services held %v, cassandra held %v; want %v, %v",
				step.what, step.tick, turn, h.Services().Held(), pause.Held(), step.set, step.health)
		}
		if h.Held() != (step.mode == HealthHeld) {
			t.Fatalf("%s: Held() = %v", step.what, h.Held())
		}
	}
	var none *HealthHold
	none.Set(HealthHeld, time.Now())
	if none.Services().Held() || none.Service("x").Held() || none.Held() {
		t.Fatal("a nil hold holds")
	}
}

// TestHealthHoldSaysWhenAWatchWasBlind: a read that follows a hold of its query (the query
// waited at the pause) is told that the watch saw nothing meanwhile, once; a read whose query
// was never held (it waited in Consul, where every change returns it) is not.
func TestHealthHoldSaysWhenAWatchWasBlind(t *testing.T) {
	h := NewHealthHold("n1", 5*time.Minute, HealthAsks)
	pause := h.Service("cassandra")
	now := time.Unix(1_000_000_000, 0)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, step := range []struct {
		what  string
		mode  HealthMode
		blind bool
	}{
		{"asks", HealthAsks, false},
		{"held", HealthHeld, true},
		{"asks again", HealthAsks, false},
		{"shares, not its turn", HealthShares, true},
	} {
		h.Set(step.mode, now) // one tick: a service's turn comes once in it at most
		// The query asks again: it waits at the pause when it holds (here no longer than its
		// context, which is over).
		_ = pause.Wait(gone)
		if got := h.Saw("cassandra", 10); got != step.blind {
			t.Fatalf("%s: blind %v, want %v", step.what, got, step.blind)
		}
		if h.Saw("cassandra", 10) {
			t.Fatalf("%s: a second read without a hold between is told it was blind", step.what)
		}
	}
}

// TestSlotIsFNV1a: the slot is FNV-1a's hash, as hash/fnv computes it.
func TestSlotIsFNV1a(t *testing.T) {
	for _, tt := range [][2]string{{"n0001", "cassandra"}, {"", ""}, {"web-01.example.com", "nova-compute"}} {
		h := fnv.New64a()
		h.Write([]byte(tt[0] + "\x00" + tt[1]))
		if got, want := slot(tt[0], tt[1]), h.Sum64(); got != want {
			t.Fatalf("slot(%q, %q) = %x, want %x", tt[0], tt[1], got, want)
		}
	}
}
