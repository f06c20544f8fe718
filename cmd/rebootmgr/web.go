package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/web"
)

// webFlags are the live view's flags: how to reach Consul, where to listen, and the alert source
// its rows judge by.
type webFlags struct {
	connFlags
	listen string
	alertFlags
}

func webFlagSet() (*flagSet, *webFlags) {
	var f webFlags
	fs := newFlagSet("web")
	fs.group(connGroup, func(g *flag.FlagSet) {
		f.connFlags.register(g)
		g.StringVar(&f.listen, "listen", "127.0.0.1:8471", "serve the live view at this address: HOST:PORT (loopback: this machine only, or a proxy in front), or :PORT (every interface: anyone who reaches it sees the fleet)")
	})
	fs.group(gatesGroup+" (the alerts: every node's is judged by these)", f.alertFlags.register)
	return fs, &f
}

func runWeb(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, f := webFlagSet()
	fs.Usage = fs.usage(stdout, "rebootmgr web [--listen ADDR]", `  rebootmgr web                         the fleet, live, at http://127.0.0.1:8471/
  ssh -L 8471:127.0.0.1:8471 ctl1       from a workstation, then open http://127.0.0.1:8471/
`)
	if err := parse(fs.FlagSet, args, e); err != nil {
		return err
	}
	src, err := f.alertSource()
	if err != nil {
		return err
	}
	o, err := f.operator(e, stderr)
	if err != nil {
		return err
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	log = log.With(logkey.Component, "web")
	reader := fleet.Reader{Source: o.store, FileExists: func(string) bool { return false }, Now: time.Now}
	srv := &web.Server{
		Read: func(ctx context.Context) (fleet.Snapshot, error) {
			snap, err := reader.Read(ctx)
			if err == nil && src != nil {
				snap.Alerts = src.Read(ctx)
			}
			return snap, err
		},
		Watch: func(ctx context.Context, changed func()) error {
			if src != nil {
				// The alert source has no blocking query: it is read again this often.
				go every(ctx, src.Every, changed)
			}
			return o.store.FleetChanges(ctx, changed)
		},
		Logger: log,
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	log.Info("serving the live view, read-only", logkey.Addr, "http://"+l.Addr().String()+"/")
	return serveWeb(ctx, srv, l)
}

// serveWeb serves srv on l until ctx ends, or the fleet can no longer be watched.
func serveWeb(ctx context.Context, srv *web.Server, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	err := srv.Run(ctx)
	cancel()
	shut, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = hs.Shutdown(shut)
	if serr := <-served; err == nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	return err
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
