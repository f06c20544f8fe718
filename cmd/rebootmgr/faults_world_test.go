package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/notify"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// What the fault run holds against a reboot, and what it forgives. The run knows when it
// changed the fleet, and it watches Consul for what it shows of it: when a failed service shows
// critical in the catalog, when a node that left is gone from it, when a node takes a place
// (the fleet's record of holders). It knows three moments of every reboot: when the webhook
// answered its "reboot started" (health is judged again after that answer, so every read of
// the last health verdict comes after it), when the daemon logged "running the reboot command"
// (right after its last read of the stop flags, the lock and the limit), and when the reboot
// command read the clock. A change is held against a reboot only when the read that came after
// it must have seen it:
//
//   - health: what Consul showed (as the run saw it, with consistent reads) before the webhook
//     answered, and still showed at the last read (a failure the run had not healed yet, a
//     node not back yet, a holder that still holds). No window: the run's watches see a change
//     after Consul has it, never before. A failed service usually shows within the
//     check interval (checkInterval: the next run of its script check, then the agent's sync);
//     after an agent or server restart the agent syncs it later, and rebootmgr can only judge
//     what Consul shows. The longest seen is logged at the end of the run.
//   - the stop flag and the limit: set before the last read was served, readLag before its
//     log line.
const (
	// checkInterval is the interval of the fleet's script checks.
	checkInterval = time.Second
	// readLag is how long before the daemon's log line its last read may have been served:
	// the answer back through its agent (two loopback hops), decoding the view's nine keys,
	// and the checks of the stop flags, the lock and the limit, under a millisecond on an idle machine;
	// 20 ms holds a daemon (built with the race detector) waiting for a core meanwhile, a
	// scheduling period or so on 2 cores shared by ~20 busy processes. The stop flag and the
	// limit get this much, and nothing else.
	readLag = 20 * time.Millisecond
	// logPrecision: the daemons log times to the millisecond, truncated.
	logPrecision = time.Millisecond
)

// span is a time during which a condition held: surely from from on, perhaps no longer after
// to (zero: it still holds).
type span struct{ from, to time.Time }

// spans is the history of one condition.
type spans []span

func (s spans) on() bool { return len(s) > 0 && s[len(s)-1].to.IsZero() }

func (s *spans) begin(at time.Time) {
	if !s.on() {
		*s = append(*s, span{from: at})
	}
}

func (s *spans) end(at time.Time) {
	if s.on() {
		(*s)[len(*s)-1].to = at
	}
}

// held says whether the condition surely held from from until at least until.
func (s spans) held(from, until time.Time) bool {
	for _, sp := range s {
		if !sp.from.After(from) && (sp.to.IsZero() || !sp.to.Before(until)) {
			return true
		}
	}
	return false
}

// limitChange is a group's limit set by the run: perhaps in force from from (when the command
// started), surely from to (when it returned); auto is math.MaxInt (no count: the rules decide).
type limitChange struct {
	from, to time.Time
	limit    int
}

// world is what the run did to the fleet, when, and what it saw of it. The webhook and the
// watches run in goroutines of their own, hence the lock.
type world struct {
	mu      sync.Mutex
	stop    spans
	failing map[string]*spans // node/service: failed by the run, and seen critical in the catalog
	gone    map[string]*spans // node: seen gone from the catalog, and remembered
	limits  map[string][]limitChange
	// holding is when the run first saw each holder of the fleet's record, still holding.
	holding map[string]time.Time
	// announced is when the webhook answered each node's latest "reboot started".
	announced map[string]time.Time
	// first is the node whose agent is the server; the run sets the stop flag through it.
	first *fleettest.Node
	// stopUntil is when the run removes the stop flag it set.
	stopUntil time.Time
	// calm: the faults are over, the webhook sets nothing.
	calm bool
	// What was seen, for the log at the end: the webhook's slow answers and stop flags, and the
	// longest a failure took to show critical in the catalog.
	slowAnswers, webhookStops int
	visible                   time.Duration
}

func newWorld() *world {
	return &world{failing: map[string]*spans{}, gone: map[string]*spans{},
		limits: map[string][]limitChange{}, holding: map[string]time.Time{}, announced: map[string]time.Time{}}
}

func (w *world) of(m map[string]*spans, key string) *spans {
	if m[key] == nil {
		m[key] = &spans{}
	}
	return m[key]
}

// maxLimit is the highest limit of group that may have been in force at some moment of
// [from, until].
func (w *world) maxLimit(group string, from, until time.Time) int {
	changes := w.limits[group]
	best := 0
	for i, c := range changes {
		if c.from.After(until) {
			break
		}
		if i+1 < len(changes) && changes[i+1].to.Before(from) {
			continue
		}
		best = max(best, c.limit)
	}
	return best
}

// minLimit is the lowest limit of group that may have been in force at some moment of [from,
// until] (math.MaxInt: auto, surely).
func (w *world) minLimit(group string, from, until time.Time) int {
	changes := w.limits[group]
	best := math.MaxInt
	for i, c := range changes {
		if c.from.After(until) {
			break
		}
		if i+1 < len(changes) && changes[i+1].to.Before(from) {
			continue
		}
		best = min(best, c.limit)
	}
	return best
}

// setStop sets the fleet's stop flag, to be removed after d (by the run's step), or keeps it
// set until then at least; w.mu must be held.
func (w *world) setStop(reason string, d time.Duration) error {
	if !w.stop.on() {
		if _, err := w.first.KV().Put(&api.KVPair{Key: w.first.Keys().Stop(), Value: []byte(reason)}, nil); err != nil {
			return fmt.Errorf("set the stop flag: %w", err)
		}
		w.stop.begin(time.Now())
	}
	if until := time.Now().Add(d); until.After(w.stopUntil) {
		w.stopUntil = until
	}
	return nil
}

// clearStop removes the stop flag; w.mu must be held.
func (w *world) clearStop() error {
	w.stop.end(time.Now())
	if _, err := w.first.KV().Delete(w.first.Keys().Stop(), nil); err != nil {
		return fmt.Errorf("remove the stop flag: %w", err)
	}
	return nil
}

// webhook serves the daemons' notifications. One "reboot started" in two and one other
// notification in four is answered late, up to 4.5 s (under the notifier's 5 s bound, so that
// every daemon waits for its answer and health is judged after it), and while the faults last
// one "reboot started" in four sets the stop flag (for 0.5 to 4 s) before it is answered: that
// node must then not reboot. The answer to a "reboot started" is when the run judges the
// node's health from.
func webhook(t *testing.T, w *world, seed uint64) string {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, ^seed))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		var m notify.Message
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			t.Errorf("webhook: %v", err)
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		started := m.Kind == pipeline.NotifyRebootStarted
		mu.Lock()
		var delay time.Duration
		if (started && rng.IntN(2) == 0) || rng.IntN(4) == 0 {
			delay = time.Duration(rng.IntN(4500)) * time.Millisecond
		}
		stop := started && rng.IntN(4) == 0
		stopFor := 500*time.Millisecond + time.Duration(rng.IntN(3500))*time.Millisecond
		mu.Unlock()
		w.mu.Lock()
		if w.calm {
			stop = false
		}
		w.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			// The daemon is gone (killed): nobody waits for this answer.
			return
		}
		w.mu.Lock()
		if delay > 0 {
			w.slowAnswers++
		}
		if stop && !w.calm {
			err := w.setStop("webhook: "+m.Node+" started its reboot", stopFor)
			if err == nil {
				w.webhookStops++
			}
			t.Logf("  webhook, %s's %q after %s: stop flag set (%v)", m.Node, m.Kind, delay, err)
		}
		if started {
			w.announced[m.Node] = time.Now()
		}
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// watchHolders follows the fleet's record of holders with blocking queries on the server and
// writes down when each holder was first seen; it ends with the test.
func watchHolders(t *testing.T, w *world, first *fleettest.Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		var index uint64
		for ctx.Err() == nil {
			pair, meta, err := first.KV().Get(first.Keys().Holders(), (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second, RequireConsistent: true}).WithContext(ctx))
			if err != nil {
				// The server is restarting: ask again.
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			now := time.Now()
			fleet := lock.Fleet{}
			if pair != nil {
				if fleet, err = lock.DecodeFleet(pair.Value); err != nil {
					t.Errorf("fleet's record of holders: %v", err)
					return
				}
			}
			w.mu.Lock()
			for node := range fleet.Holders {
				if _, ok := w.holding[node]; !ok {
					w.holding[node] = now
				}
			}
			for node := range w.holding {
				if _, ok := fleet.Holders[node]; !ok {
					delete(w.holding, node)
				}
			}
			w.mu.Unlock()
			if index = meta.LastIndex; index == 0 {
				index = 1
			}
		}
	}()
}

// watchFailure follows, with blocking queries, the checks of service until node's shows
// critical, and from then on counts the failure made at from (w.failing); cancel, or the end of
// the test, ends it.
func watchFailure(t *testing.T, w *world, first *fleettest.Node, node, service string, from time.Time) (cancel func()) {
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var index uint64
		for ctx.Err() == nil {
			checks, meta, err := first.Agent.Client.Health().Checks(service, (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second, RequireConsistent: true}).WithContext(ctx))
			if err != nil {
				// The server is restarting: ask again.
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			for _, c := range checks {
				if c.Node == node && c.ServiceName == service && c.Status == api.HealthCritical {
					now := time.Now()
					w.mu.Lock()
					w.of(w.failing, node+"/"+service).begin(now)
					w.visible = max(w.visible, now.Sub(from))
					w.mu.Unlock()
					return
				}
			}
			index = meta.LastIndex
		}
	}()
	return func() { stop(); <-done }
}

// logTimes are the times of the lines of a daemon's log with msg.
func logTimes(log, msg string) []time.Time {
	re := regexp.MustCompile(`(?m)^time=(\S+) .*msg="?` + regexp.QuoteMeta(msg))
	var out []time.Time
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			out = append(out, at)
		}
	}
	return out
}
