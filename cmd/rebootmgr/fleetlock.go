package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/store"
)

const fleetlockExamples = `  rebootmgr fleetlock --listen :8470 --tls-cert /etc/rebootmgr/tls.crt --tls-key /etc/rebootmgr/tls.key \
      --token-file /etc/rebootmgr/fleetlock-tokens   over TLS, a token per group (GROUP=TOKEN lines):
                                                     base_url = "https://GROUP:TOKEN@HOST:8470/"
  rebootmgr fleetlock --listen 127.0.0.1:8470 --insecure-no-auth   on loopback, every request served
                                                     (a proxy in front that authenticates the hosts)
`

// fleetlockFlags are the FleetLock server's flags: where it listens and how, and what the
// daemons share with it (the prefix, Consul, the deadline, the Python markers, the logs).
type fleetlockFlags struct {
	connFlags
	listen        string
	tlsCert       string
	tlsKey        string
	tokenFile     string
	noAuth        bool
	maxQueue      int
	deadline      time.Duration
	minInterval   time.Duration
	pythonMarkers bool
	alertFlags
}

// fleetlockFlagSet: not --node or --group: a request names its host and group.
func fleetlockFlagSet() (*flagSet, *fleetlockFlags) {
	var f fleetlockFlags
	fs := newFlagSet("fleetlock")
	fs.group("Connection", f.connFlags.register)
	fs.group("Serving", func(g *flag.FlagSet) {
		g.StringVar(&f.listen, "listen", "", "serve FleetLock at this address (required): HOST:PORT, such as 127.0.0.1:8470 (this machine only, a proxy in front), or :PORT (every interface)")
		g.StringVar(&f.tlsCert, "tls-cert", "", "serve over TLS with this certificate (PEM; with --tls-key)")
		g.StringVar(&f.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
		g.StringVar(&f.tokenFile, "token-file", "", "require a token per group: a file of GROUP=TOKEN lines (* for every other group); a request sends Authorization: Bearer TOKEN (or TOKEN as the password of Basic authentication)")
		g.BoolVar(&f.noAuth, "insecure-no-auth", false, "serve every request without a token: any client that reaches --listen may take and give back places in every group's lock (without --token-file the server starts only with this)")
		g.IntVar(&f.maxQueue, "max-queue", fleetlock.DefaultMaxQueue, fmt.Sprintf("a host refused for want of room joins its group's queue only while the queue holds fewer entries than this (1 to %d); past it, queue_full", fleetlock.MaxQueueBound))
	})
	fs.group("The lock's rules", func(g *flag.FlagSet) {
		g.DurationVar(&f.deadline, "reboot-deadline", 30*time.Minute, "from a host's pre-reboot to its steady-state; a holder past it stops its group, keeping the lock (0: none)")
		g.DurationVar(&f.minInterval, "min-reboot-interval", time.Hour, "least time between the end of a host's reboot (its steady-state) and the grant of its next (0: none)")
		g.BoolVar(&f.pythonMarkers, "python-markers", true, "mark the hosts' reboots in the Python rebootmgr's reboot_in_progress keys, as the daemons do (false once no node runs it)")
	})
	fs.group("The alerts (judged at each pre-reboot, as the daemons judge them)", f.alertFlags.registerHosts)
	return fs, &f
}

func runFleetlock(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, f := fleetlockFlagSet()
	fs.Usage = fs.usage(stdout, "rebootmgr fleetlock --listen ADDR [--tls-cert FILE --tls-key FILE] (--token-file FILE | --insecure-no-auth)", fleetlockExamples)
	if err := parse(fs.FlagSet, args, e); err != nil {
		return err
	}
	if f.listen == "" {
		return fmt.Errorf("%w: fleetlock needs --listen ADDR (such as 127.0.0.1:8470)", errUsage)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	if err := f.validate(); err != nil {
		return err
	}
	if f.maxQueue < 1 || f.maxQueue > fleetlock.MaxQueueBound {
		return fmt.Errorf("%w: --max-queue %d: want 1 to %d", errUsage, f.maxQueue, fleetlock.MaxQueueBound)
	}
	alertSrc, err := f.alertSource()
	if err != nil {
		return err
	}
	switch {
	case f.tokenFile == "" && !f.noAuth:
		return fmt.Errorf("%w: fleetlock needs --token-file FILE (GROUP=TOKEN lines: a request for a group needs its token), or --insecure-no-auth to serve every client that reaches --listen without one", errUsage)
	case f.tokenFile != "" && f.noAuth:
		return fmt.Errorf("%w: --token-file and --insecure-no-auth exclude each other", errUsage)
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	log = log.With(logkey.Component, "fleetlock")
	var tokens fleetlock.Tokens
	if f.tokenFile != "" {
		if tokens, err = fleetlock.LoadTokens(f.tokenFile); err != nil {
			return fmt.Errorf("%w: --token-file: %v", errUsage, err)
		}
		if fi, err := os.Stat(f.tokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the token file can be read by others than its owner: chmod 600 it", logkey.File, f.tokenFile, logkey.Mode, fi.Mode().Perm().String())
		}
	}
	client, err := f.consul(e)
	if err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		host = "an unknown host"
	}
	handler := &fleetlock.Handler{
		Locks: &fleetlock.Locks{
			Client: client, Keys: store.Keys{Prefix: f.prefix}, PythonMarkers: f.pythonMarkers,
			Deadline: f.deadline, MinRebootInterval: f.minInterval, MaxQueue: f.maxQueue, By: "rebootmgr fleetlock on " + host, Logger: log,
			Sightings: lock.NewSightings(time.Now), Alerts: alertSrc,
		},
		Tokens: tokens,
		Logger: log,
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	srv := &fleetlock.Server{Handler: handler, CertFile: f.tlsCert, KeyFile: f.tlsKey, Logger: log}
	if f.noAuth {
		log.Warn("no authentication (--insecure-no-auth): any client that reaches this address may take and give back places in every group's lock", logkey.Addr, l.Addr().String())
	}
	log.Info("serving FleetLock", logkey.Addr, l.Addr().String(), logkey.TLS, f.tlsCert != "", logkey.Tokens, len(tokens))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	turns := make(chan error, 1)
	go func() { turns <- handler.Locks.Run(ctx) }()
	err = srv.Serve(ctx, l)
	cancel()
	<-turns
	return err
}
