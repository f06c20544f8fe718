package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
)

// Python nodes: with Config.PythonEvery, every Nth node runs the Python rebootmgr (0.0.32, its
// lock from consul_lib) in place of the daemon, as a fleet moving from it does (see
// docs/migration.md). It is a stand-in for the Python code as it talks to Consul, request for
// request (pyrun.go): a run of it is a process whose requests park at the node's gate as a
// daemon's do; its session renewer is a thread of that process, here a chain of the
// scheduler's items. Its timer starts a run every pyTick; a run that reboots the machine runs
// `shutdown -r +1`, and after the boot a run finishes the reboot. Its promises to the daemons,
// and theirs to it, are checked in pycheck.go.

// The Python rebootmgr's times, from its code and its design document.
const (
	// pyTick is how often its timer runs it: "designed to run on every node, every 5 Minutes"
	// (docs/design.md; the package ships no timer since 0.0.18). A run starts pyTick after the
	// last one ended, as systemd starts no oneshot unit that is still running.
	pyTick = 5 * time.Minute
	// pySessionTTL is its session's TTL (session.create(ttl=600)); Consul's servers end a
	// session that was not renewed for twice its TTL.
	pySessionTTL = 600 * time.Second
	// pyRenewEvery is its SessionRenewer's pause between renewals.
	pyRenewEvery = 5 * time.Second
	// pyChecksWait is its wait for the checks before it looks again (time.sleep(60*2 + 10)).
	pyChecksWait = 130 * time.Second
	// pyHealthyWait is its wait before it looks again at failing checks after the boot
	// (--post-reboot-wait-until-healthy).
	pyHealthyWait = 120 * time.Second
	// pyRetryWait and pyRetryFor are its @retry(wait_fixed=2000, stop_max_delay=20000).
	pyRetryWait, pyRetryFor = 2 * time.Second, 20 * time.Second
	// pyShutdownDelay is shutdown -r +1.
	pyShutdownDelay = time.Minute
	// pyMaxUptime is --check-uptime: a node that finds its marker with a longer uptime exits 103.
	pyMaxUptime = 2 * time.Hour
	// pyBootedBefore is how long before the run's start the machines last booted.
	pyBootedBefore = 30 * 24 * time.Hour
)

// python is the Python rebootmgr on a node.
type python struct {
	// group is its config's "group" ("" for none: it locks the fleet's keys, lock/.lock and
	// reboot_in_progress, and waits for every member of the fleet).
	group string
	// run is the run in progress (nil: none; a wedged one stays).
	run   *pyRun
	timer *item
	// exit is how the last run ended, for the trace.
	exit string
	// holds: its marker names it, from its write until its post-boot run deletes it; rogue: its
	// session had lost its lock when it wrote it (see pyMarked); markedAt, when it wrote it.
	holds, rogue bool
	markedAt     time.Time
	// noted: a daemon's place beside its rogue marker was noted.
	noted bool
	// unstick is an operator's deletion of a marker left by a reboot that did not happen.
	unstick *item
}

// pyConfig is the config the fleet's nodes keep in the Python rebootmgr's keys
// (nodes/<node>/config), as --ensure-config wrote it, with the node's group.
func pyConfig(group string) string {
	cfg := map[string]any{"enabled": true, "message": "Default config created"}
	if group != "" {
		cfg["group"] = group
	}
	data, _ := json.Marshal(cfg)
	return string(data)
}

// addPython makes every PythonEvery-th node a Python node, the first of them and every other
// one after it of its group, the others of none; and gives every node its Python config, as a
// fleet mid-move keeps them (a node that moved keeps its config until the move is done).
func (w *World) addPython() {
	if w.cfg.PythonEvery <= 0 {
		return
	}
	k := 0
	for i, n := range w.nodes {
		if i%w.cfg.PythonEvery == w.cfg.PythonEvery-1 {
			n.py = &python{group: n.group}
			w.pyNodes++
			if k%2 == 1 {
				n.py.group = ""
			}
			k++
		}
		group := n.group
		if n.py != nil {
			group = n.py.group
		}
		w.model.Put(w.keys.PythonConfig(n.name), pyConfig(group))
	}
}

// askKey is where an operator asks n to reboot: the key its rebootmgr reads.
func (w *World) askKey(n *node) string {
	if n.py != nil {
		return pyPrefix + "nodes/" + n.name + "/reboot_required"
	}
	return w.keys.RebootRequired(n.name)
}

// pyStart is a Python node's machine up: its timer runs it first within a tick.
func (w *World) pyStart(n *node) {
	w.log(n.name, "the Python rebootmgr's timer starts (boot %s)", n.bootID)
	w.pyArm(n, time.Duration(w.sched.rng.Int64N(int64(pyTick))))
}

// pyArm starts n's next run after d.
func (w *World) pyArm(n *node, d time.Duration) {
	py := n.py
	if py.timer != nil {
		py.timer.gone = true
	}
	py.timer = w.sched.add(w.sched.now.Add(d), n.name, "python timer", func() {
		py.timer = nil
		if !n.down && py.run == nil {
			w.pyRunStarts(n)
		}
	})
}

// pyRunStarts starts a run of n's Python rebootmgr, a process of its own, and runs it until it
// parks.
func (w *World) pyRunStarts(n *node) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{w: w, node: n, ctx: ctx, cancel: cancel}
	r := &pyRun{w: w, n: n, p: p}
	r.c = w.model.Client(n.name, p.gate)
	n.py.run = r
	go r.main()
	w.awaitPark()
}

// main is the run's process: the Python rebootmgr's cli(), then its end.
func (r *pyRun) main() {
	defer func() { r.w.yielded <- struct{}{} }()
	code := r.cli()
	if r.p.dead {
		return
	}
	r.p.dead = true
	w, n := r.w, r.n
	if code == pyWedged {
		r.wedged = true
		w.pyFinding(n.name, "the Python rebootmgr's run hangs: its release failed, so its SessionRenewer (no daemon thread) is never told to finish and keeps the process, its session and any lock it holds alive until it is killed")
		return
	}
	n.py.run = nil
	w.joined(n.name)
	if exit := fmt.Sprintf("exit %d", code); exit != n.py.exit {
		n.py.exit = exit
		w.log(n.name, "python: %s (%s)", exit, pyExitMeaning(code))
	}
	if code == 103 {
		w.pyStuck(n)
	}
	if !n.down {
		w.pyArm(n, pyTick)
	}
}

// pyKill ends n's run as kill -9 does: its session lives on until Consul ends it.
func (w *World) pyKill(n *node) {
	r := n.py.run
	if r == nil {
		return
	}
	n.py.run = nil
	r.finished = true
	if r.renewItem != nil {
		r.renewItem.gone = true
	}
	if !r.wedged {
		w.kill(r.p)
	}
}

// pyShutdown is the run's shutdown -r +1: the machine goes down a minute later.
func (w *World) pyShutdown(n *node) {
	w.pyRebootStarts(n)
	w.sched.add(w.sched.now.Add(pyShutdownDelay), n.name, "shutdown", func() {
		if n.py.run != nil {
			w.log(n.name, "the machine goes down under a run of the Python rebootmgr")
			w.pyKill(n)
		}
		if n.py.timer != nil {
			n.py.timer.gone = true
			n.py.timer = nil
		}
		w.log(n.name, "goes down (shutdown -r +1)")
		w.machineDown(n, true)
		w.pyDown(n)
	})
}

// startRenewer is consul_lib's SessionRenewer: a renewal at once, then every pyRenewEvery
// until it is told to finish. Its requests go through a client of its own, answered when the
// scheduler picks its item (a paused process renews when it runs again); what Consul answers
// it is ignored, as the thread does. Its renewals are not in the trace.
func (r *pyRun) startRenewer() {
	w, n := r.w, r.n
	c := w.model.Client(n.name, func(_ context.Context, call *consulmodel.Call) *consulmodel.Refusal {
		ref := w.refusal(n, call)
		if ref != nil {
			w.logCall(n, call, ref)
		}
		return ref
	})
	var step func()
	step = func() {
		r.renewItem = nil
		if r.finished {
			return
		}
		if n.pausedUntil.After(w.sched.now) {
			r.renewItem = w.sched.add(n.pausedUntil, n.name, "python renew", step)
			return
		}
		if e, _, err := c.Session().Renew(r.session, nil); err == nil && e != nil {
			r.lastRenew = w.sched.now
		}
		r.renewItem = w.sched.add(w.sched.now.Add(pyRenewEvery), n.name, "python renew", step)
	}
	r.renewItem = w.sched.add(w.sched.now, n.name, "python renew", step)
	w.pyWatchSession(r, r.session)
}

// pyWatchSession ends session as Consul's servers do once it was not renewed for twice its TTL.
func (w *World) pyWatchSession(r *pyRun, session string) {
	at := r.lastRenew.Add(2 * pySessionTTL)
	w.sched.add(at, r.n.name, "session ttl", func() {
		if r.session == session && r.lastRenew.Add(2*pySessionTTL).After(w.sched.now) {
			w.pyWatchSession(r, session)
			return
		}
		if w.model.Expire(session) {
			w.log(r.n.name, "Consul ends the Python rebootmgr's session %s: not renewed for %s", session, 2*pySessionTTL)
		}
	})
}

// pyLockHolder is the session that holds key's lock ("" for none).
func (w *World) pyLockHolder(key string) string {
	for _, p := range w.model.List(key) {
		if p.Key == key {
			return p.Session
		}
	}
	return ""
}

// pySessionRequest is the session the Python rebootmgr asks for (session.create(ttl=600,
// checks=[])): no health check, so that a short failure of its agent does not end it.
type pySessionRequest struct {
	Checks []string `json:"checks"`
	TTL    string   `json:"ttl"`
}

// createSession is session.create(ttl=600, checks=[]).
func (r *pyRun) createSession() error {
	var out struct{ ID string }
	if _, err := r.c.Raw().Write("/v1/session/create", pySessionRequest{Checks: []string{}, TTL: "600s"}, &out, nil); err != nil {
		return r.failed(err)
	}
	if out.ID == "" {
		return fmt.Errorf("session create: no ID")
	}
	r.session, r.lastRenew = out.ID, r.w.sched.now
	return nil
}

// kvGet is con.kv.get(key): nil when the key is absent.
func (r *pyRun) kvGet(key string) (*api.KVPair, error) {
	p, _, err := r.c.KV().Get(key, nil)
	return p, r.failed(err)
}
