package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rebootmgr/rebootmgr/daemon"
	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/metrics"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/rungroup"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/systemd"
	"github.com/rebootmgr/rebootmgr/tasks"
	"github.com/rebootmgr/rebootmgr/watch"
)

const daemonExamples = `  rebootmgr daemon                            run as the always-on service (see deploy/rebootmgr.service)
  rebootmgr daemon --log-format json          the same, logging JSON for journald or ELK
`

// daemonFlags are the daemon's flags: the pipeline's and its own.
type daemonFlags struct {
	pipelineFlags
	interval      time.Duration
	rebootTimeout time.Duration
	watchEvents   bool
	metricsAddr   string
	enabled       bool
}

func (d *daemonFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&d.interval, "interval", 5*time.Minute, "look again this often even without an event, in case one was missed")
	fs.DurationVar(&d.rebootTimeout, "reboot-timeout", 10*time.Minute, "give up, loudly, if the machine is still up this long after the reboot command")
	fs.BoolVar(&d.watchEvents, "watch", true, "react to Consul and file changes at once; false leaves only the --interval tick, as a timer would")
	fs.StringVar(&d.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. :9279 (off when empty)")
	fs.BoolVar(&d.enabled, "enabled", true, "false: do nothing, reboot nothing, and tell systemd so (the package installs false: an operator says when a node may reboot)")
}

func daemonFlagSet() (*flagSet, *daemonFlags) {
	var f daemonFlags
	fs := newFlagSet("daemon")
	f.addTo(fs)
	fs.group("The daemon", f.register)
	return fs, &f
}

func runDaemon(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, df := daemonFlagSet()
	f := &df.pipelineFlags
	fs.Usage = fs.usage(stdout, "rebootmgr daemon [flags]", daemonExamples)
	if err := parse(fs.FlagSet, args, e); err != nil {
		return err
	}
	if !df.enabled {
		return notEnabled(ctx, e, df, stderr)
	}
	// The daemon reboots only when asked.
	opts := wireOptions{checkTriggers: true}
	var m *metrics.Metrics
	reg := prometheus.NewRegistry()
	if df.metricsAddr != "" {
		var err error
		if m, err = metrics.New(reg, version); err != nil {
			return err
		}
		opts.via, opts.observeTask = m.Transport, m.ObserveTask
	}
	lastStart := startedAt(f.lockFile)
	w, err := f.wire(ctx, e, opts, stderr)
	if err != nil {
		return err
	}
	defer w.release()
	now := time.Now()
	if err := os.WriteFile(f.lockFile, []byte(startMark+now.UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		w.log.Warn("could not note the daemon's start in its lock file", logkey.File, f.lockFile, logkey.Err, err)
	}
	// The daemon's parts, its metrics server's and its loop's, run as one: the first to end
	// ends the others.
	var g rungroup.Group
	observe, unbind, err := addMetrics(&g, m, reg, df.metricsAddr, w)
	if err != nil {
		return err
	}
	defer unbind()
	published, stopped, err := df.publish(ctx, w, now)
	if err != nil {
		return err
	}
	defer stopped()
	d := df.daemon(w, e, lastStart, now)
	d.Observe, d.Presence = observe, published
	d.Add(&g)
	w.log.Info("rebootmgr daemon started", logkey.Node, w.pipeline.Node, logkey.Version, version)
	if err := g.Run(ctx); err != nil {
		return err
	}
	withdraw(w.pipeline, w.log)
	// A clean stop is no restart loop: the next start watches at once.
	if err := os.WriteFile(f.lockFile, nil, 0o644); err != nil {
		w.log.Warn("could not clear the daemon's start from its lock file", logkey.File, f.lockFile, logkey.Err, err)
	}
	return nil
}

// daemon is the daemon of the node w wires, with its sources: see daemon.Daemon.
func (df *daemonFlags) daemon(w *wired, e env, lastStart, now time.Time) *daemon.Daemon {
	p := w.pipeline
	// The daemon lives on: it judges the times other nodes wrote by when it saw them.
	p.Sightings = lock.NewSightings(p.Clock.Now)
	if df.watchEvents {
		// A daemon that watches looks again at every reboot that ends, and at its tick: its claim
		// of room holds for two ticks unless it judges again (see lock.Claims).
		p.ClaimFor = 2 * df.interval
	}
	// What a node need not hear as it is: see daemon.Daemon.Quiet.
	var ps pauses
	ps.quiet, ps.health, ps.turn, ps.claims = daemon.NewPauses(p.Node, df.interval)
	return &daemon.Daemon{
		Pipeline:      p,
		Events:        watch.NewEvents(),
		Sources:       df.sources(w, ps, lastStart, now),
		RebootTimeout: df.rebootTimeout,
		Notifier:      systemd.Notifier{Socket: e.get("NOTIFY_SOCKET")},
		Logger:        w.log.With(logkey.Component, "daemon", logkey.Node, p.Node),
		Node:          p.Node,
		Group:         w.group,
		Refresh:       df.interval,
		Silent:        w.store.SilentDaemons,
		Quiet:         ps.quiet,
		Health:        ps.health,
		Turn:          ps.turn,
		Claims:        ps.claims,
		// The pipeline's: a holder's deadline it finds is a moment on this clock, which may be
		// shifted (--clock-offset).
		Clock: p.Clock,
	}
}

// addMetrics serves the metrics m, when there are (--metrics-addr), as a part of g; observe
// counts each run into them (nil without metrics). The address is bound at once (a port in use
// fails the start); unbind frees it should g not run. A server that fails later is logged,
// never a reason to stop the daemon.
func addMetrics(g *rungroup.Group, m *metrics.Metrics, reg *prometheus.Registry, addr string, w *wired) (observe func(pipeline.Result, error), unbind func(), err error) {
	if m == nil {
		return nil, func() {}, nil
	}
	m.Identify(w.pipeline.Node, w.group)
	srv := metrics.Server{Addr: addr, Gatherer: reg, Logger: w.log.With(logkey.Component, "metrics")}
	ln, err := srv.Listen()
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	g.Add(func(ctx context.Context) error {
		if err := srv.Serve(ctx, ln); err != nil {
			srv.Logger.Error("metrics server failed: no more metrics until the daemon restarts", logkey.Err, err)
			<-ctx.Done()
		}
		return nil
	})
	return func(res pipeline.Result, err error) { m.ObserveRun(res, err, time.Now()) }, func() { _ = ln.Close() }, nil
}

// publish registers the daemon in Consul with the settings it judges by; stopped says there that
// it stopped. A daemon that cannot register still does its job: other nodes then see no daemon
// here (presence nil). A dry run changes nothing in Consul: it registers nothing, so that it
// neither takes over nor, when it stops, marks as stopped the node's daemon that runs beside it.
func (df *daemonFlags) publish(ctx context.Context, w *wired, now time.Time) (presence daemon.Presence, stopped func(), err error) {
	if df.dryRun {
		w.log.Info("dry run: not registered in Consul; status shows this node's daemon, if one runs, not this dry run")
		return nil, func() {}, nil
	}
	settings, err := df.settings(df.enabled)
	if err != nil {
		return nil, nil, err
	}
	reg := store.Registration{Client: w.client, Node: w.pipeline.Node, TTL: 3 * df.interval, Meta: settings.Meta(now)}
	// Its tasks as it found them: status and check elsewhere cannot see them.
	counts, terr := df.listTasks(w.log)
	fleet.TasksMeta(reg.Meta, counts[tasks.Pre], counts[tasks.Post], terr)
	if err := reg.Register(ctx); err != nil {
		w.log.Warn("could not register the daemon in Consul: status shows no daemon on this node (the token needs service \"rebootmgr\" write)", logkey.Err, err)
		return nil, func() {}, nil
	}
	return reg, func() { daemonStopped(reg, w.log) }, nil
}

// pauses are what a node need not hear as it is: see daemon.Daemon.Quiet.
type pauses struct {
	quiet, turn, claims *watch.Pause
	health              *watch.HealthHold
}

// sources are what wakes the daemon: its tick and, when it watches, Consul's keys and health
// and the reboot-required files.
func (df *daemonFlags) sources(w *wired, ps pauses, lastStart, now time.Time) []daemon.Source {
	keys := store.Keys{Prefix: df.prefix}
	p, client, log := w.pipeline, w.client, w.log
	wlog := log.With(logkey.Component, "watch", logkey.Node, p.Node)
	quiet := ps.quiet
	key := func(k string, src watch.Source, pause *watch.Pause) daemon.Source {
		return watch.KeySource{KV: client.KV(), Key: k, Source: src, Logger: wlog, Pause: pause}
	}
	sources := []daemon.Source{watch.Tick{Interval: df.interval}}
	if !df.watchEvents {
		return sources
	}
	consul := []daemon.Source{
		key(keys.Stop(), watch.SourceStop, nil),
		key(keys.GroupStop(w.group), watch.SourceStop, nil),
		key(keys.RebootRequired(p.Node), watch.SourceTrigger, nil),
		key(keys.Disabled(p.Node), watch.SourceDisabled, nil),
		key(keys.GroupLimit(w.group), watch.SourceLimit, nil),
		watch.KeySource{KV: client.KV(), Key: keys.GroupTurn(w.group, p.Node), Logger: wlog, Pause: ps.turn, Classify: turnSource},
		key(keys.GroupLock(w.group), watch.SourceLock, quiet),
		key(keys.GroupQueue(w.group), watch.SourceLock, quiet),
		key(keys.Holders(), watch.SourceHolders, quiet),
		key(keys.Claims(), watch.SourceClaims, ps.claims),
		watch.HealthSource{Client: client, Node: p.Node, Tag: health.Tag, Logger: wlog, Seen: remember(w.store, wlog), Runs: df.rememberSelf(w.store, p.Node, wlog), Hold: ps.health},
	}
	if df.pythonMarkers {
		// A Python holder holds the lock: its coming and going wakes a node waiting for it.
		for _, k := range keys.LegacyKeys(w.group) {
			consul = append(consul, key(k, watch.SourcePython, quiet))
		}
		// Its stop flag of the group and the node's config hold the node as rebootmgr's own.
		consul = append(consul, key(keys.PythonGroupStop(w.group), watch.SourceStop, nil), key(keys.PythonConfig(p.Node), watch.SourceDisabled, nil))
	}
	if !lastStart.IsZero() && now.Sub(lastStart) < restartWindow {
		// Consul keeps a blocking query, and one of the agent's connections per client
		// address, until its wait ends, even after the daemon that asked is gone: a daemon
		// in a restart loop would leave its watches behind at every exit until the agent
		// refuses its clients. So a daemon started again soon after its last start polls
		// for a while before it blocks.
		log.Warn("started again soon after a daemon that did not stop cleanly: looking every few seconds instead of watching Consul for a while, so that a restart loop leaves no queries behind",
			logkey.LastStart, lastStart.UTC().Format(time.RFC3339), logkey.Poll, restartPoll, logkey.For, restartQuiet)
		for i, s := range consul {
			consul[i] = watch.Delayed{Source: s, Delay: restartQuiet}
		}
		sources = append(sources, watch.Tick{Interval: restartPoll, For: restartQuiet})
	}
	sources = append(sources, consul...)
	sources = append(sources, watch.FileSource{Paths: df.triggerFiles.values, Logger: wlog})
	return sources
}

// withdraw takes the node's claim of room away as the daemon stops (see pipeline.Withdraw).
func withdraw(p *pipeline.Pipeline, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Withdraw(ctx); err != nil {
		log.Warn("could not take this node's claim of room away: nodes with more room may wait for it until it lapses", logkey.Err, err)
	}
}

// daemonStopped says in Consul that the daemon stopped.
func daemonStopped(reg store.Registration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.Update(ctx, store.DaemonDown, "stopped at "+time.Now().UTC().Format(time.RFC3339)); err != nil {
		log.Warn("could not say in Consul that the daemon stopped: it shows as running until its check's TTL passes", logkey.Err, err)
	}
}

// A daemon started within restartWindow of the start of one that did not stop cleanly polls
// Consul every restartPoll for restartQuiet before it opens its blocking queries (see
// runDaemon).
const (
	restartWindow = 10 * time.Minute
	restartQuiet  = time.Minute
	restartPoll   = 5 * time.Second
)

// startMark starts the line a daemon writes into its lock file when it starts, and clears
// when it stops cleanly.
const startMark = "rebootmgr daemon started at "

// startedAt is when a daemon last started on this node and did not stop cleanly (it crashed,
// was killed, or failed): zero when none did (the lock file lives in /run, empty after a boot).
func startedAt(lockFile string) time.Time {
	data, err := os.ReadFile(lockFile)
	if err != nil {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(strings.TrimPrefix(string(data), startMark)))
	if err != nil || !strings.HasPrefix(string(data), startMark) {
		return time.Time{}
	}
	return at
}

// turnSource says what a node's turn key tells it: a place opened (it runs), or only to look at
// the lock (see store.TurnValue).
func turnSource(p *api.KVPair) watch.Source {
	if p != nil && store.TurnIsPlace(p.Value) {
		return watch.SourceTurn
	}
	return watch.SourceLook
}

// rememberSelf writes the node down as a member of the services it runs, each time the health
// watch reads them (see store.RememberSelf); nil for a dry run, which changes nothing.
func (df *daemonFlags) rememberSelf(st *store.Consul, node string, log *slog.Logger) func(context.Context, []string) {
	if df.dryRun {
		return nil
	}
	return func(ctx context.Context, services []string) {
		if err := st.RememberSelf(ctx, node, services); err != nil && ctx.Err() == nil {
			log.Warn("could not remember this node as a member of the services it runs: it is remembered when a node reads them whole", logkey.Services, services, logkey.Err, err)
		}
	}
}

// remember writes down the nodes a health watch sees running a service as its members, so
// that one that leaves the catalog later still counts (as failing).
func remember(st *store.Consul, log *slog.Logger) func(context.Context, string, []string) {
	return func(ctx context.Context, service string, nodes []string) {
		if err := st.Remember(ctx, service, nodes); err != nil && ctx.Err() == nil {
			log.Warn("could not remember the members of a service: a member that leaves the catalog before it is remembered is not counted", logkey.Service, service, logkey.Err, err)
		}
	}
}
