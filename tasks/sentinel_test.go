package tasks

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestSentinel: exit 0 asks for a reboot, any other exit does not, and a command that cannot
// start, cannot run or hangs never does: it is ended at its timeout, its whole process group
// with it, and the failure is logged.
func TestSentinel(t *testing.T) {
	pidfile, leftover := filepath.Join(t.TempDir(), "pid"), filepath.Join(t.TempDir(), "leftover")
	tests := []struct {
		name     string
		command  string
		shell    string
		required bool
		failed   bool
		said     string
		logged   string
	}{
		{"exit 0", "true", "", true, false, "exit 0: reboot required", ""},
		{"exit 1", "exit 1", "", false, false, "exit 1: no reboot required", ""},
		{"inverted, as needs-restarting -r takes it", "! sh -c 'exit 1'", "", true, false, "exit 0", ""},
		{"needrestart's kernel status", "printf 'NEEDRESTART-VER: 3.6\\nNEEDRESTART-KCUR: 6.1.0-17\\nNEEDRESTART-KSTA: 3\\n' | grep -q '^NEEDRESTART-KSTA: 3$'", "", true, false, "exit 0", ""},
		{"a program that is not there", "/nonexistent/needs-restarting -r", "", false, true, "cannot run (exit 127", "cannot run"},
		{"a shell that cannot start", "true", "/nonexistent/sh", false, true, "cannot start", "cannot start"},
		{"killed", "kill -9 $$", "", false, true, "killed", "was killed"},
		{"exit 0, leaving a child that holds its output", "sleep 1000 & echo $! > " + leftover + "; exit 0", "", true, false, "exit 0", "left a process behind"},
		{"hangs, with a child", "sleep 1000 & echo $! > " + pidfile + "; sleep 1000", "", false, true, "timed out after 300ms", "timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &fleettest.Log{}
			timeout := 10 * time.Second
			if strings.HasPrefix(tt.said, "timed out") {
				timeout = 300 * time.Millisecond
			}
			s := Sentinel{Command: tt.command, Shell: tt.shell, Timeout: timeout, Env: []string{"PATH=" + os.Getenv("PATH")}, Logger: slog.New(slog.NewTextHandler(log, nil))}
			v := s.Run(t.Context())
			if v.Required != tt.required || v.Failed != tt.failed || !strings.Contains(v.Said, tt.said) {
				t.Fatalf("verdict %+v; want required %v, failed %v, saying %q", v, tt.required, tt.failed, tt.said)
			}
			if tt.logged != "" && !strings.Contains(log.String(), tt.logged) {
				t.Fatalf("the failure was not logged (%q):\n%s", tt.logged, log)
			}
		})
	}
	for _, f := range []string{pidfile, leftover} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); !gone(pid) {
			t.Fatalf("the child %d of a command survived it (%s)", pid, filepath.Base(f))
		}
	}
}

// TestSentinelEnded: a run whose context ends (a shutdown) ends the command and is no reboot.
func TestSentinelEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	started := filepath.Join(t.TempDir(), "started")
	done := make(chan Verdict, 1)
	go func() {
		done <- Sentinel{Command: "touch " + started + "; exec sleep 1000", Timeout: time.Hour}.Run(ctx)
	}()
	waitFor(t, func() bool { _, err := os.Stat(started); return err == nil })
	cancel()
	if v := <-done; v.Required || !v.Failed {
		t.Fatalf("verdict %+v after the context ended", v)
	}
}

// TestSentinelNoConsulCredentials: the command does not get rebootmgr's Consul token.
func TestSentinelNoConsulCredentials(t *testing.T) {
	s := Sentinel{Command: `test -z "$CONSUL_HTTP_TOKEN" && test "$CONSUL_HTTP_ADDR" = 127.0.0.1:8500`, Env: []string{"CONSUL_HTTP_TOKEN=secret", "CONSUL_HTTP_ADDR=127.0.0.1:8500"}}
	if v := s.Run(t.Context()); !v.Required {
		t.Fatalf("the command saw the token, or not the address: %+v", v)
	}
}
