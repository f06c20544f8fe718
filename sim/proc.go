package sim

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/daemon"
	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/watch"
)

// proc is one run of a node's daemon, from its start until it is killed or its machine goes
// down. Its goroutine runs only while it holds the baton.
type proc struct {
	w      *World
	node   *node
	gen    int
	ctx    context.Context
	cancel context.CancelFunc
	d      *daemon.Daemon
	step   *daemon.Stepper
	// Where its goroutine is parked: idle (its step done), on a request, or on a wait of its
	// clock (the wait's item).
	idle, call chan struct{}
	callItem   *item
	wait       *item
	dead       bool
	// dirty are the sources whose watches were held when what they watch changed: each is
	// heard once its watch is no longer held (see watch.Pause).
	dirty map[watch.Source]bool
	tick  *item
	// status is the last status its daemon reported.
	status string
	// host: a FleetLock host's loop, not a daemon (see hosts.go).
	host bool
	// health are its health watches, with Config.HealthReads: they read through hclient, and
	// remember the members they see in hstore.
	health  []*hwatch
	hclient *api.Client
	hstore  *store.Consul
}

// start starts node's daemon and runs it until it parks.
func (w *World) start(n *node) {
	if n.py != nil {
		w.pyStart(n)
		return
	}
	n.gen++
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{w: w, node: n, gen: n.gen, ctx: ctx, cancel: cancel, dirty: map[watch.Source]bool{}}
	n.proc = p
	if w.sched.now.After(n.trouble) {
		n.trouble = w.sched.now
	}
	p.d = p.daemon()
	w.log(n.name, "daemon starts (run %d, boot %s)", p.gen, n.bootID)
	// Its start's requests the simulation stands in for: each watch's first read (ten keys and
	// the health of each service, unless the health watches read), and its registration with
	// its check.
	w.watchRequests += 10 + 2
	if w.cfg.PythonEvery > 0 {
		// The Python rebootmgr's two session locks and two markers, its stop flag of the
		// group and the node's config.
		w.watchRequests += 6
	}
	if w.cfg.HealthReads {
		w.startHealth(p)
	} else {
		w.watchRequests += len(n.services)
		w.rememberSelf(p)
	}
	p.armTick(time.Duration(w.sched.rng.Int64N(int64(w.cfg.Interval))))
	go p.main()
	w.awaitPark()
}

// main is the daemon's loop: each thing due, until nothing is; then parked until something is.
func (p *proc) main() {
	defer func() { p.w.yielded <- struct{}{} }()
	p.step = p.d.Stepper()
	for {
		switch p.step.Step(p.ctx) {
		case daemon.Idle:
			if p.dead {
				return
			}
			p.w.release(p)
			if p.health != nil {
				p.w.healthStepped(p)
			}
			if p.parkIdle() {
				return
			}
		case daemon.Rebooting:
			p.w.wentDown(p)
			return
		case daemon.Shutdown:
			return
		}
	}
}

// parkIdle parks the goroutine until it is poked; it says whether it was killed meanwhile.
func (p *proc) parkIdle() bool {
	ch := make(chan struct{})
	p.idle = ch
	p.w.yielded <- struct{}{}
	<-ch
	return p.dead
}

// parkOnWait hands the baton back as the goroutine is about to block on a wait of its clock.
func (p *proc) parkOnWait() { p.w.yielded <- struct{}{} }

// poke wakes p's goroutine when it is idle: something it watches changed or one of its timers
// is over. A busy one finds it at its next step.
func (w *World) poke(p *proc) {
	if p.dead || p.idle == nil {
		return
	}
	ch := p.idle
	p.idle = nil
	w.resume(ch)
}

// gate is the process's every request to Consul: it parks until the scheduler picks it, which
// may refuse it (a fault) or delay it.
func (p *proc) gate(ctx context.Context, c *consulmodel.Call) *consulmodel.Refusal {
	w := p.w
	if p.dead {
		return &consulmodel.Refusal{Status: 500, Body: "the process was killed"}
	}
	ch := make(chan struct{})
	var refusal *consulmodel.Refusal
	at := w.sched.now.Add(w.latency(p.node, c))
	p.callItem = w.sched.add(at, p.node.name, "call", func() {
		p.call, p.callItem = nil, nil
		refusal = w.refusal(p.node, c)
		w.logCall(p.node, c, refusal)
		w.resume(ch)
	})
	p.call = ch
	w.yielded <- struct{}{}
	<-ch
	if p.dead {
		return &consulmodel.Refusal{Status: 500, Body: "the process was killed"}
	}
	return refusal
}

// kill ends p as kill -9 does: at once, wherever it is parked; what it did not write is lost.
func (w *World) kill(p *proc) {
	if p.dead {
		return
	}
	p.dead = true
	p.cancel()
	if p.tick != nil {
		p.tick.gone = true
	}
	p.node.proc = nil
	switch {
	case p.idle != nil:
		ch := p.idle
		p.idle = nil
		w.resume(ch)
	case p.call != nil:
		p.callItem.gone = true
		ch := p.call
		p.call = nil
		w.resume(ch)
	case p.wait != nil:
		// Its context ending wakes it.
		p.wait.gone = true
		p.wait = nil
		w.awaitPark()
	}
}

// armTick is the daemon's fallback tick, after d and every interval after.
func (p *proc) armTick(d time.Duration) {
	w := p.w
	p.tick = w.sched.add(w.sched.now.Add(d), p.node.name, "tick", func() {
		if p.dead {
			return
		}
		p.armTick(w.cfg.Interval)
		w.hear(p, watch.Event{Source: watch.SourceTick, At: p.clock().Now()})
	})
}

func (p *proc) clock() clock { return clock{w: p.w, node: p.node} }

// daemon wires the node's daemon as the command does (cmd/rebootmgr), on the model.
func (p *proc) daemon() *daemon.Daemon {
	w, n := p.w, p.node
	quiet := slog.New(slog.DiscardHandler)
	client := w.model.Client(n.name, p.gate)
	ck := p.clock()
	retry := func() backoff.BackOff { return backoff.NewConstantBackOff(5 * time.Second) }
	st := &store.Consul{Client: client, Keys: w.keys, Group: n.group, Logger: quiet, Now: ck.Now, NewBackOff: retry, PythonMarkers: w.cfg.PythonEvery > 0}
	pl := &pipeline.Pipeline{
		Config: pipeline.Config{
			Node: n.name, Zone: n.zone, CheckTriggers: true, Deadline: w.cfg.Deadline,
			Cooldown: w.cfg.Cooldown, StayGreen: w.cfg.StayGreen, ClaimFor: 2 * w.cfg.Interval,
		},
		Store:     simStore{st},
		Health:    store.Health{Client: client, Members: st, Remember: true, Local: true, InOrder: true},
		Tasks:     noTasks{},
		Rebooter:  rebooter{p},
		Clock:     ck,
		BootID:    func() (string, error) { return n.bootID, nil },
		Note:      pipeline.RebootNote(w.notePath(n)),
		Logger:    quiet,
		Sightings: lock.NewSightings(ck.Now),
	}
	d := &daemon.Daemon{
		Pipeline: pl, Events: watch.NewEvents(), Notifier: noNotifier{}, Logger: quiet,
		Node: n.name, Group: n.group, Retry: retry, Clock: ck, AnswerWithin: lock.AnswerWithin,
		RebootTimeout: 10 * time.Minute,
		Observe:       p.observe,
	}
	d.Quiet, d.Health, d.Turn, d.Claims = daemon.NewPauses(n.name, w.cfg.Interval)
	// The simulation's watches (see watches.go) never fail: a run may rely on what they report.
	d.Events.Reading("the simulated watches", true)
	return d
}

// observe writes a run's status into the trace when it changed.
func (p *proc) observe(res pipeline.Result, err error) {
	status := daemon.Status(res, err)
	if err != nil {
		status += ": " + err.Error()
	}
	if status != p.status {
		p.status = status
		p.w.log(p.node.name, "status: %s", clip.OneLine(status))
	}
	p.w.joined(p.node.name)
}

// simStore is the store, but for its wait on the stop flag, which holds blocking queries: the
// tasks and settling of the simulation take no time, and the flag is read where a run reads it.
type simStore struct{ *store.Consul }

func (s simStore) WaitStop(ctx context.Context) (place.Flag, error) {
	<-ctx.Done()
	return place.Flag{}, ctx.Err()
}

type noTasks struct{}

func (noTasks) Validate() error                         { return nil }
func (noTasks) Run(context.Context, string, bool) error { return nil }

type noNotifier struct{}

func (noNotifier) Ready(string) error  { return nil }
func (noNotifier) Status(string) error { return nil }

// rebooter is the machine's reboot: the simulation notes it, checks every promise at that
// moment, and takes the machine down when the daemon's step ends.
type rebooter struct{ p *proc }

func (r rebooter) Reboot(context.Context) error {
	return r.p.w.rebootStarts(r.p)
}

// wentDown takes p's machine down after its reboot command, and boots it again later.
func (w *World) wentDown(p *proc) {
	n := p.node
	p.dead = true
	if p.tick != nil {
		p.tick.gone = true
	}
	n.proc = nil
	w.machineDown(n, !p.host)
}

// machineDown takes n's machine down (its agent too, when it has one), and boots it again later.
func (w *World) machineDown(n *node, agent bool) {
	n.down = true
	if agent {
		w.model.SetCheck(n.name, "serfHealth", "", "critical")
	}
	took := w.cfg.RebootTime/2 + time.Duration(w.sched.rng.Int64N(int64(w.cfg.RebootTime)))
	w.sched.add(w.sched.now.Add(took), n.name, "boot", func() { w.boot(n) })
}

// boot brings n back: a new boot id, /run emptied, its agent up, its daemon started.
func (w *World) boot(n *node) {
	n.down = false
	n.rebooted++
	n.lastBoot = w.sched.now
	if at, ok := w.asked[n.name]; ok && n.rebootedAfter(at) {
		delete(w.asked, n.name)
	}
	n.bootID = fmt.Sprintf("%s-boot-%d", n.name, n.rebooted)
	_ = os.Remove(w.notePath(n))
	w.log(n.name, "boots")
	if n.host {
		w.startHost(n)
		return
	}
	w.model.SetCheck(n.name, "serfHealth", "", "passing")
	w.start(n)
}
