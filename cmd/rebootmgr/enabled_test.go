package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/internal/sdtest"
)

// TestDaemonNotEnabled: a daemon told --enabled=false (the package installs
// REBOOTMGR_ENABLED=false) reboots nothing and writes no file, and an agent that does not answer
// (it would only say there that it is not enabled: see TestStatusSaysNotEnabled) keeps it from
// nothing: it tells systemd it is ready with a status that says how to enable it, given where
// the setting came from, and stops cleanly when told to.
func TestDaemonNotEnabled(t *testing.T) {
	tests := []struct {
		name   string
		where  string // file, environment or command line
		status string // %s: the configuration file
	}{
		{"in the configuration file", "file", "STATUS=not enabled: set REBOOTMGR_ENABLED=true in %s, then systemctl restart rebootmgr"},
		{"in the environment", "environment", "STATUS=not enabled: REBOOTMGR_ENABLED=false is set in the daemon's environment: set it to true"},
		{"on the command line", "command line", "STATUS=not enabled: the command line says --enabled=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var asked []string
			consul := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				asked = append(asked, r.Method+" "+r.URL.Path)
				mu.Unlock()
				http.Error(w, "no agent here", http.StatusServiceUnavailable)
			}))
			defer consul.Close()
			sd := sdtest.Listen(t)
			dir := t.TempDir()
			socket := sd.Path

			file := filepath.Join(dir, "rebootmgr")
			writeFile(t, file, "# as the package installs it\nREBOOTMGR_ENABLED=true\n")
			environ := map[string]string{"NOTIFY_SOCKET": socket, "REBOOTMGR_CONFIG": file}
			lockFile, reboots := filepath.Join(dir, "lock"), filepath.Join(dir, "reboots")
			args := []string{"daemon", "--consul-addr", strings.TrimPrefix(consul.URL, "http://"),
				"--lock-file", lockFile, "--reboot-command", "echo rebooted >> " + reboots,
				"--reboot-required-file", filepath.Join(dir, "reboot_required")}
			writeFile(t, filepath.Join(dir, "reboot_required"), "kernel")
			switch tt.where {
			case "file":
				writeFile(t, file, "# as the package installs it\nREBOOTMGR_ENABLED=false\n")
			case "environment":
				environ["REBOOTMGR_ENABLED"] = "false"
			case "command line":
				args = append(args, "--enabled=false")
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan result, 1)
			go func() { done <- runCLIContext(ctx, environ, args...) }()

			got := sd.Next(t, 30*time.Second)
			want := "READY=1\n" + strings.ReplaceAll(tt.status, "%s", file)
			if got != want {
				t.Fatalf("told systemd %q, want %q", got, want)
			}
			cancel()
			r := <-done
			if r.code != 0 || !strings.Contains(r.stderr, "not enabled") {
				t.Fatalf("want a clean stop that logged why it idled, got %s", r)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range asked {
				if r != "PUT /v1/agent/service/register" {
					t.Errorf("a daemon that is not enabled asked Consul %s", r)
				}
			}
			for _, path := range []string{lockFile, reboots} {
				if _, err := os.Stat(path); err == nil {
					t.Errorf("a daemon that is not enabled wrote %s", path)
				}
			}
		})
	}
}

// runCLIContext is runCLI until ctx ends (SIGTERM, for a daemon).
func runCLIContext(ctx context.Context, environ map[string]string, args ...string) result {
	var stdout, stderr strings.Builder
	lookup := func(k string) (string, bool) { v, ok := environ[k]; return v, ok }
	code := run(ctx, args, env{lookup: lookup}, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestRebootIsAskedByName: a bare rebootmgr, typed to see what it does, reboots nothing, even
// with every flag that points it at a node: it lists the commands and says how to reboot (exit
// 64). rebootmgr reboot on a node whose daemon is not enabled is refused (exit 101) unless
// forced, saying so and where the setting came from; its dry run is not refused.
func TestRebootIsAskedByName(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	file := filepath.Join(n.dir, "rebootmgr.default")
	writeFile(t, file, "# as the package installs it\nREBOOTMGR_ENABLED=false\n")
	notEnabled := map[string]string{"REBOOTMGR_CONFIG": file}

	for _, args := range [][]string{n.args("reboot"), n.args("reboot", "--check-triggers"), nil} {
		for _, environ := range []map[string]string{nil, notEnabled} {
			var stdout, stderr strings.Builder
			code := run(context.Background(), args, testEnv(environ), &stdout, &stderr)
			r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "Commands:") ||
				!strings.HasPrefix(lastLine(r.stderr), "rebootmgr: no command given: rebootmgr reboot reboots this node") {
				t.Fatalf("rebootmgr %v: want the commands and how to reboot, exit 64: %s", args, r)
			}
		}
	}
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil || n.inMaintenance() {
		t.Fatalf("a bare rebootmgr acted: %d reboots, lock %v, maintenance %v", n.rebootCount(), n.get(n.keys().Lock()), n.inMaintenance())
	}

	n.expect(n.runWith(context.Background(), notEnabled, &fleettest.Log{}, "reboot"), exitDisabled,
		"REBOOTMGR_ENABLED=false in "+file, "rebootmgr reboot --force")
	n.expect(n.runWith(context.Background(), map[string]string{"REBOOTMGR_ENABLED": "false"}, &fleettest.Log{}, "reboot"), exitDisabled,
		"REBOOTMGR_ENABLED=false in the environment")
	if n.rebootCount() != 0 || n.get(n.keys().Lock()) != nil || n.inMaintenance() {
		t.Fatal("a reboot of a node that is not enabled acted")
	}
	n.expect(n.runWith(context.Background(), notEnabled, &fleettest.Log{}, "reboot", "--dry-run"), 0, "dry run")
	n.expect(n.runWith(context.Background(), notEnabled, &fleettest.Log{}, "reboot", "--force"), 0, "reboot started")
	if n.rebootCount() != 1 {
		t.Fatalf("reboot --force ran the reboot command %d times", n.rebootCount())
	}
}
