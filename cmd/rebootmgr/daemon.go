package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rebootmgr/rebootmgr/daemon"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/metrics"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/systemd"
	"github.com/rebootmgr/rebootmgr/watch"
)

const daemonExamples = `  rebootmgr daemon                            run as the always-on service (see deploy/rebootmgr.service)
  rebootmgr daemon --log-format json          the same, logging JSON for journald or ELK
`

func runDaemon(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	var f rebootFlags
	f.register(fs)
	interval := fs.Duration("interval", 5*time.Minute, "look again this often even without an event, in case one was missed")
	rebootTimeout := fs.Duration("reboot-timeout", 10*time.Minute, "give up, loudly, if the machine is still up this long after the reboot command")
	watchEvents := fs.Bool("watch", true, "react to Consul and file changes at once; false leaves only the --interval tick, as a timer would")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. :9279 (off when empty)")
	fs.Usage = usageFunc(fs, stdout, "rebootmgr daemon [flags]", daemonExamples)
	if err := parse(fs, args, e); err != nil {
		return err
	}
	f.checkTriggers = true
	var m *metrics.Metrics
	reg := prometheus.NewRegistry()
	if *metricsAddr != "" {
		var err error
		if m, err = metrics.New(reg, version); err != nil {
			return err
		}
		f.via, f.observeTask = m.Transport, m.ObserveTask
	}
	w, err := f.wire(ctx, stderr)
	if err != nil {
		return err
	}
	defer w.release()
	p, client, log := w.pipeline, w.client, w.log
	var observe func(pipeline.Result, error)
	if m != nil {
		m.Identify(p.Node, f.group)
		stop, err := serveMetrics(ctx, metrics.Server{Addr: *metricsAddr, Gatherer: reg, Logger: log.With("component", "metrics")})
		if err != nil {
			return err
		}
		defer stop()
		observe = func(res pipeline.Result, err error) { m.ObserveRun(res, err, time.Now()) }
	}
	keys := store.Keys{Prefix: f.prefix}
	wlog := log.With("component", "watch", "node", p.Node)
	key := func(k string, src watch.Source) daemon.Source {
		return watch.KeySource{KV: client.KV(), Key: k, Source: src, Logger: wlog}
	}
	sources := []daemon.Source{watch.Tick{Interval: *interval}}
	if *watchEvents {
		sources = append(sources,
			key(keys.Stop(), watch.SourceStop),
			key(keys.GroupStop(f.group), watch.SourceStop),
			key(keys.RebootRequired(p.Node), watch.SourceTrigger),
			key(keys.Disabled(p.Node), watch.SourceDisabled),
			key(keys.GroupLock(f.group), watch.SourceLock),
			key(keys.GroupLimit(f.group), watch.SourceLock),
			key(keys.Holders(), watch.SourceHolders),
			watch.HealthSource{Client: client, Node: p.Node, Tag: health.Tag, Logger: wlog, Seen: remember(w.store, wlog)},
			watch.FileSource{Paths: f.triggerFiles.values, Logger: wlog},
		)
		if f.pythonMarkers {
			// A Python holder holds the lock: its coming and going wakes a node waiting for it.
			for _, k := range keys.LegacyKeys(f.group) {
				sources = append(sources, key(k, watch.SourcePython))
			}
		}
	}
	d := &daemon.Daemon{
		Pipeline:      p,
		Events:        watch.NewEvents(),
		Sources:       sources,
		RebootTimeout: *rebootTimeout,
		Notifier:      systemd.Notifier{Socket: e.get("NOTIFY_SOCKET")},
		Logger:        log.With("component", "daemon", "node", p.Node),
		Observe:       observe,
	}
	log.Info("rebootmgr daemon started", "node", p.Node, "version", version)
	return d.Run(ctx)
}

// remember writes down the nodes a health watch sees running a service as its members, so
// that one that leaves the catalog later still counts (as failing).
func remember(st *store.Consul, log *slog.Logger) func(context.Context, string, []string) {
	return func(ctx context.Context, service string, nodes []string) {
		if err := st.Remember(ctx, service, nodes); err != nil && ctx.Err() == nil {
			log.Warn("could not remember the members of a service: a member that leaves the catalog before it is remembered is not counted", "service", service, "err", err)
		}
	}
}

// serveMetrics binds the metrics address (a port in use fails the start) and serves until stop.
// A server that fails later is logged, never a reason to stop the daemon.
func serveMetrics(ctx context.Context, srv metrics.Server) (stop func(), err error) {
	ln, err := srv.Listen()
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ctx, ln); err != nil {
			srv.Logger.Error("metrics server failed: no more metrics until the daemon restarts", "err", err)
		}
	}()
	return func() { cancel(); <-served }, nil
}
