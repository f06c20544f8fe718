package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// daemonRun is a daemon running in this process, as systemd would run it.
type daemonRun struct {
	Log    *fleettest.Log
	cancel context.CancelFunc
	done   chan result
}

// startDaemon starts the daemon of n and waits until it has looked at its state once.
func (n *testNode) startDaemon(extra ...string) *daemonRun {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemonRun{Log: &fleettest.Log{}, cancel: cancel, done: make(chan result, 1)}
	go func() { d.done <- n.runWith(ctx, nil, d.Log, "daemon", extra...) }()
	n.t.Cleanup(func() {
		d.stop()
		if n.t.Failed() {
			n.t.Logf("daemon log:\n%s", d.Log)
		}
	})
	fleettest.WaitSeen(n.t, d.Log.Seen("evaluating"), "the daemon's first evaluation")
	requireInotify(n.t, d.Log)
	return d
}

// requireInotify fails a test whose daemon could not watch files: the machine is out of inotify
// instances (fs.inotify.max_user_instances), and file events would never come.
func requireInotify(t testing.TB, log *fleettest.Log) {
	t.Helper()
	if log.Count("cannot watch the reboot-required files") > 0 {
		t.Fatalf("the daemon cannot use inotify on this machine (fs.inotify.max_user_instances exhausted?):\n%s", log)
	}
}

// stop is a clean shutdown (SIGTERM); it returns the daemon's result.
func (d *daemonRun) stop() result {
	d.cancel()
	r := <-d.done
	d.done <- r
	return r
}

// startDaemonProc starts n's daemon as its own process, for kill -9.
func (n *testNode) startDaemonProc(bin string, extra ...string) *fleettest.Daemon {
	n.t.Helper()
	// A process sees the test machine's host name: --node says which node it is.
	return fleettest.StartDaemon(n.t, bin, append([]string{"daemon", "--node", n.agent.Node}, n.args("daemon", extra...)...)...)
}

// waitFile waits until a file written by a task or the reboot command exists.
func waitFile(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
