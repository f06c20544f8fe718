package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonRun is a daemon running in this process, as systemd would run it.
type daemonRun struct {
	log    *logWatch
	cancel context.CancelFunc
	done   chan result
}

// startDaemon starts the daemon of n and waits until it has looked at its state once.
func (n *testNode) startDaemon(extra ...string) *daemonRun {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemonRun{log: &logWatch{}, cancel: cancel, done: make(chan result, 1)}
	go func() { d.done <- n.runWith(ctx, nil, d.log, "daemon", extra...) }()
	n.t.Cleanup(func() {
		d.stop()
		if n.t.Failed() {
			n.t.Logf("daemon log:\n%s", d.log)
		}
	})
	waitSeen(n.t, d.log.seen("evaluating"), "the daemon's first evaluation")
	requireInotify(n.t, d.log)
	return d
}

// requireInotify fails a test whose daemon could not watch files: the machine is out of inotify
// instances (fs.inotify.max_user_instances), and file events would never come.
func requireInotify(t testing.TB, log *logWatch) {
	t.Helper()
	if log.count("cannot watch the reboot-required files") > 0 {
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

// builtBinary builds rebootmgr for a test that needs it as a separate process (with the race
// detector for tests, without it for benchmarks).
func builtBinary(t testing.TB, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rebootmgr")
	args := []string{"build", "-o", bin, "."}
	if race {
		args = append(args[:1], append([]string{"-race"}, args[1:]...)...)
	}
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build rebootmgr: %v\n%s", err, out)
	}
	return bin
}

// daemonProc is a daemon running as its own process, for kill -9.
type daemonProc struct {
	cmd  *exec.Cmd
	log  *logWatch
	done chan struct{}
	mu   sync.Mutex
}

func (n *testNode) startDaemonProc(bin string, extra ...string) *daemonProc {
	n.t.Helper()
	d := &daemonProc{log: &logWatch{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"daemon"}, n.args("daemon", extra...)...)...)
	d.cmd.Stdout = &bytes.Buffer{}
	d.cmd.Stderr = d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	n.t.Cleanup(func() {
		d.kill9()
		if n.t.Failed() {
			n.t.Logf("daemon log:\n%s", d.log)
		}
	})
	waitSeen(n.t, d.log.seen("evaluating"), "the daemon's first evaluation")
	return d
}

// kill9 kills the daemon and everything in its process group at once, as a crash or a power
// cut would.
func (d *daemonProc) kill9() {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
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
