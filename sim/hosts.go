package sim

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
	"github.com/rebootmgr/rebootmgr/lock"
)

// FleetLock hosts: machines that run no daemon of rebootmgr's but ask the FleetLock server for
// a place before they reboot (pre-reboot), and tell it once they are back (steady-state), as
// Zincati does on Fedora CoreOS. The server is the real fleetlock.Locks, on the model, with
// the server's own requests gated as a node's are; a host polls it every minute or so, as
// Zincati retries, and its id is its own (no node's).

// hostPoll is how often a host asks again.
const hostPoll = time.Minute

// server is the FleetLock server every host asks, its requests through a process of its own.
func (w *World) server() *fleetlock.Locks {
	if w.fleetlock != nil {
		return w.fleetlock
	}
	srv := &node{name: "fleetlock"}
	w.fleetlockNode = srv
	p := &proc{w: w, node: srv, ctx: context.Background()}
	srv.proc = p
	w.fleetlock = &fleetlock.Locks{
		Client: w.model.Client(srv.name, p.gateFor), Keys: w.keys, Deadline: w.cfg.Deadline,
		By: "rebootmgr fleetlock on sim", Logger: slog.New(slog.DiscardHandler), Now: clock{w: w, node: srv}.Now,
		Sightings: lock.NewSightings(clock{w: w, node: srv}.Now), PythonMarkers: w.cfg.PythonEvery > 0, HealthInOrder: true,
	}
	return w.fleetlock
}

// startHost starts h's loop: it asks for a place while it wants one, reboots when given one,
// and says it is back until the server gives the place back.
func (w *World) startHost(h *node) {
	h.gen++
	p := &proc{w: w, node: h, gen: h.gen, host: true}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	h.proc = p
	w.log(h.name, "FleetLock host starts (boot %s)", h.bootID)
	go p.hostMain()
	w.awaitPark()
}

// hostMain is a host's loop, one poll a step.
func (p *proc) hostMain() {
	w, h := p.w, p.node
	defer func() { w.yielded <- struct{}{} }()
	srv := w.server()
	for !p.dead {
		p.pollIn(hostPoll/2 + time.Duration(w.sched.rng.Int64N(int64(hostPoll))))
		if p.parkIdle() {
			return
		}
		switch {
		case h.finishing:
			// A 200 ends Zincati's steady-state calls, whether it released a place or held none.
			released, err := srv.SteadyState(p.withServer(), h.name, h.group)
			w.log(h.name, "steady-state: released %v (%v)", released, err)
			if err == nil {
				h.finishing = false
			}
		case h.wants:
			// The server's requests are this host's turn: they park on the server's gate, as
			// this host's goroutine.
			err := srv.PreReboot(p.withServer(), h.name, h.group)
			if err != nil {
				w.log(h.name, "pre-reboot refused: %v", err)
				continue
			}
			_ = w.rebootStarts(p)
			h.wants, h.finishing = false, true
			w.wentDown(p)
			return
		}
	}
}

// procKey carries, in a request's context, the process whose turn the request is.
type procKey struct{}

// withServer is the context of a request the host makes of the server: the server's requests
// made for it are its own (see gateFor).
func (p *proc) withServer() context.Context { return context.WithValue(p.ctx, procKey{}, p) }

// pollIn pokes the host after d.
func (p *proc) pollIn(d time.Duration) {
	w := p.w
	p.tick = w.sched.add(w.sched.now.Add(d), p.node.name, "poll", func() {
		if !p.dead {
			w.poke(p)
		}
	})
}

// gateFor is the server's gate: the server's requests park the goroutine of the host that made
// them, so the server is no goroutine of its own.
func (p *proc) gateFor(ctx context.Context, c *consulmodel.Call) *consulmodel.Refusal {
	if asker, ok := ctx.Value(procKey{}).(*proc); ok {
		return asker.gate(ctx, c)
	}
	return nil
}

// addHosts adds the run's FleetLock hosts, in the groups by turn.
func (w *World) addHosts() {
	for i := range w.cfg.Hosts {
		h := &node{name: w.hostID(i), group: fmt.Sprintf("g%d", i%w.cfg.Groups+1), host: true}
		h.bootID = h.name + "-boot-0"
		w.hosts = append(w.hosts, h)
	}
}
