package sim

import (
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/watch"
)

// IdleConfig is one tagged service of Instances instances, each on a node of its own, whose
// first Daemons nodes run a daemon that nothing asks to reboot: what such a daemon costs Consul
// as the service grows.
type IdleConfig struct {
	Seed uint64
	// Instances of the service; Daemons, the nodes of them running a daemon (2 when zero).
	Instances, Daemons int
	// Ticks is how long the daemons are measured, in ticks, once their start is over (when
	// zero: whole rounds of their turns at reading the service, an hour at least; see
	// watch.Period).
	Ticks int
	// Interval is the daemons' tick (5m when zero).
	Interval time.Duration
	// Flap, when set, is how often a check of the service changes (warning and passing in turn,
	// on a node without a daemon): a large service's health is seldom still.
	Flap time.Duration
	// Join, when set, is when a node without a daemon joins the service, after the daemons'
	// start: IdleResult.Remembered says how long the daemons took to remember it.
	Join time.Duration
}

// IdleResult is what the daemons cost, per daemon and minute of their clocks: every request of
// theirs the model answered, with the bytes of the bodies both ways, and what their watches of
// keys would ask; the health watches' share of it apart.
type IdleResult struct {
	Instances, Daemons, Ticks   int
	Flap                        time.Duration
	Requests, Bytes             float64
	HealthRequests, HealthBytes float64
	// Joined: a node joined (IdleConfig.Join); Remembered is how long after it joined it was
	// remembered as a member (-1: not by the end of the run).
	Joined     bool
	Remembered time.Duration
}

// Summary is the result in one line.
func (r IdleResult) Summary() string {
	return fmt.Sprintf("idle: instances=%d daemons=%d ticks=%d flap=%s requests_per_daemon_minute=%.2f bytes_per_daemon_minute=%.0f health_requests_per_daemon_minute=%.2f health_bytes_per_daemon_minute=%.0f",
		r.Instances, r.Daemons, r.Ticks, r.Flap, r.Requests, r.Bytes, r.HealthRequests, r.HealthBytes) + r.joined()
}

func (r IdleResult) joined() string {
	switch {
	case !r.Joined:
		return ""
	case r.Remembered < 0:
		return " joined_remembered_after=never"
	}
	return fmt.Sprintf(" joined_remembered_after=%s", r.Remembered)
}

// Idle runs the daemons of cfg with nothing to do, their health watches reading as the source
// does (Config.HealthReads), and measures them once their start is over. Every instance is
// remembered as a member already, as in a fleet that has run a while.
func Idle(cfg IdleConfig) (IdleResult, error) {
	if cfg.Daemons <= 0 {
		cfg.Daemons = 2
	}
	if cfg.Ticks <= 0 {
		round := int(watch.Period(cfg.Instances))
		cfg.Ticks = round * ((12 + round - 1) / round)
	}
	if cfg.Instances < cfg.Daemons {
		return IdleResult{}, fmt.Errorf("idle: %d daemons among %d instances", cfg.Daemons, cfg.Instances)
	}
	w, err := New(Config{Seed: cfg.Seed, Nodes: cfg.Instances, Groups: 1, SharedEvery: -1, Limit: "1", Interval: cfg.Interval, HealthReads: true})
	if err != nil {
		return IdleResult{}, err
	}
	defer w.Close()
	for _, n := range w.nodes {
		w.model.Put(w.keys.Member(n.services[0], n.name), "first seen "+epoch.Format(time.RFC3339))
	}
	daemons := w.nodes[:cfg.Daemons]
	for _, n := range daemons {
		w.start(n)
	}
	if cfg.Flap > 0 {
		w.flap(w.nodes[len(w.nodes)-1], cfg.Flap, "warning")
	}
	// Its start is over once the queries it left asking have returned (at the end of Consul's
	// wait at the latest), and it has ticked.
	interval := w.cfg.Interval
	from := epoch.Add(watch.DefaultWait + interval)
	to := from.Add(time.Duration(cfg.Ticks) * interval)
	j := w.newcomer(cfg.Join)
	var start idleCost
	started := false
	for {
		it := w.sched.next()
		if it == nil || it.at.After(to) {
			break
		}
		if !started && !it.at.Before(from) {
			w.settleHealth(from)
			start, started = w.idleCost(daemons), true
		}
		w.steps++
		it.fire()
		j.check(w)
	}
	w.settleHealth(to)
	end := w.idleCost(daemons)
	w.shutdown()
	if len(w.violations) > 0 {
		return IdleResult{}, fmt.Errorf("idle: %s", w.violations[0])
	}
	per := float64(cfg.Daemons) * (to.Sub(from).Minutes())
	return IdleResult{
		Instances: cfg.Instances, Daemons: cfg.Daemons, Ticks: cfg.Ticks, Flap: cfg.Flap,
		Requests:       float64(end.requests-start.requests) / per,
		Bytes:          float64(end.bytes-start.bytes) / per,
		HealthRequests: float64(end.health.requests-start.health.requests) / per,
		HealthBytes:    float64(end.health.bytes-start.health.bytes) / per,
		Joined:         j.node != "",
		Remembered:     j.took,
	}, nil
}

// newcomer is a node without a daemon joining the service at a moment, and how long the
// daemons took to remember it.
type newcomer struct {
	node   string
	member string
	at     time.Time
	took   time.Duration
}

// newcomer registers a node of the service without a daemon after after (none when zero).
func (w *World) newcomer(after time.Duration) *newcomer {
	if after <= 0 {
		return &newcomer{}
	}
	svc := w.nodes[0].services[0]
	j := &newcomer{node: "joiner", member: w.keys.Member(svc, "joiner"), at: epoch.Add(after), took: -1}
	w.sched.add(j.at, j.node, "join", func() {
		w.model.Register(j.node, map[string]string{store.GroupMeta: w.nodes[0].group})
		w.model.AddService(j.node, svc, svc, []string{"rebootmgr", fmt.Sprintf("max_failing=%d", w.cfg.MaxFailing)}, 80)
		w.model.SetCheck(j.node, "service:"+svc, svc, "passing")
		w.log(j.node, "joins %s, with no daemon", svc)
	})
	return j
}

// check notes when the joined node is first remembered.
func (j *newcomer) check(w *World) {
	if j.node == "" || j.took >= 0 || w.sched.now.Before(j.at) {
		return
	}
	if _, _, ok := w.model.Get(j.member); ok {
		j.took = w.sched.now.Sub(j.at)
	}
}

// idleCost is what the daemons cost so far: requests and bytes, and their health watches'.
type idleCost struct {
	requests, bytes uint64
	health          healthCost
}

func (w *World) idleCost(daemons []*node) idleCost {
	c := idleCost{requests: uint64(w.watchRequests), health: w.hcost}
	for _, n := range daemons {
		s := w.nodeStats(n.name)
		c.requests += s.requests
		c.bytes += s.bytes
	}
	return c
}

// flap changes the check of n's first service to status every d, and back at the next.
func (w *World) flap(n *node, d time.Duration, status string) {
	w.sched.add(w.sched.now.Add(d), n.name, "flap", func() {
		w.model.SetCheck(n.name, "service:"+n.services[0], n.services[0], status)
		next := "passing"
		if status == "passing" {
			next = "warning"
		}
		w.flap(n, d, next)
	})
}
