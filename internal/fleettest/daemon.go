package fleettest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Build builds rebootmgr for a test that runs it as a separate process (with the race detector
// for tests, without it for benchmarks).
func Build(t testing.TB, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rebootmgr")
	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "-o", bin, "github.com/rebootmgr/rebootmgr/cmd/rebootmgr")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("build rebootmgr: %v\n%s", err, out)
	}
	return bin
}

// Daemon is a rebootmgr daemon running as its own process, in its own process group.
type Daemon struct {
	cmd  *exec.Cmd
	Log  *Log
	done chan struct{}
}

// StartDaemon runs bin with args (starting with "daemon") and waits until the daemon has
// evaluated its state once. It is killed when the test ends; its log is shown if it failed.
func StartDaemon(t testing.TB, bin string, args ...string) *Daemon {
	t.Helper()
	d := &Daemon{Log: &Log{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout = &bytes.Buffer{}
	d.cmd.Stderr = d.Log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.cmd.Env = Environ()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.Kill9()
		if t.Failed() {
			t.Logf("daemon log (%v):\n%s", args, d.Log)
		}
	})
	WaitSeen(t, d.Log.Seen("evaluating"), "the daemon's first evaluation")
	return d
}

// Environ is the environment of a rebootmgr a test runs as a process: this one's, without its
// REBOOTMGR_* settings (the benchmarks' own included, which rebootmgr would refuse as unknown)
// and without the machine's configuration file, which is not the test's; then extra.
func Environ(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REBOOTMGR_") {
			out = append(out, kv)
		}
	}
	return append(append(out, "REBOOTMGR_CONFIG="), extra...)
}

// Kill9 kills the daemon and everything in its process group at once, as a crash or a power
// cut would, and waits until it is gone.
func (d *Daemon) Kill9() {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

// Stop stops the daemon as systemd does (SIGTERM), and waits until it is gone: after 20 s, it
// is killed.
func (d *Daemon) Stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.Kill9()
	}
}

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }
