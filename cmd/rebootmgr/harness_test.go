package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// testNode is one simulated machine: its Consul agent, its tasks, its boot id and a reboot
// command that only records that it ran.
type testNode struct {
	t        testing.TB
	agent    *consultest.Agent
	dir      string
	tasksDir string
	bootID   string
	lockFile string
	reboots  string
	trigger  string
	boots    int
	// host is the machine's host name rebootmgr sees ("": the agent's node name, as on a node).
	host string
}

func newTestNode(t testing.TB, agent *consultest.Agent) *testNode {
	t.Helper()
	dir := t.TempDir()
	n := &testNode{
		t: t, agent: agent, dir: dir,
		tasksDir: filepath.Join(dir, "etc"),
		bootID:   filepath.Join(dir, "boot_id"),
		lockFile: filepath.Join(dir, "run", "rebootmgr.lock"),
		reboots:  filepath.Join(dir, "reboots"),
		trigger:  filepath.Join(dir, "run", "reboot_required"),
	}
	for _, d := range []string{n.tasksDir, filepath.Join(n.tasksDir, "pre_boot_tasks"), filepath.Join(n.tasksDir, "post_boot_tasks"), filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.boot()
	return n
}

// dev starts a dev agent and a node on it.
func dev(t testing.TB) *testNode {
	t.Helper()
	return newTestNode(t, consultest.Dev(t, "n1"))
}

// boot gives the machine a new boot id, as a reboot does.
func (n *testNode) boot() {
	n.t.Helper()
	n.boots++
	if err := os.WriteFile(n.bootID, []byte(fmt.Sprintf("boot-%d\n", n.boots)), 0o644); err != nil {
		n.t.Fatal(err)
	}
	// /run is a tmpfs: a boot empties it, the daemon's lock file and the note of the reboot
	// command with it.
	for _, f := range []string{n.lockFile, rebootNote(n.lockFile)} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			n.t.Fatal(err)
		}
	}
}

// rebootCount is how often the reboot command ran.
func (n *testNode) rebootCount() int {
	data, err := os.ReadFile(n.reboots)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

func (n *testNode) task(phase, name, script string) {
	n.t.Helper()
	path := filepath.Join(n.tasksDir, phase+"_boot_tasks", name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		n.t.Fatal(err)
	}
}

type result struct {
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// args are the flags that point a run of command at this node's files and agent.
func (n *testNode) args(command string, extra ...string) []string {
	args := []string{"--consul-addr", n.agent.HTTPAddr, "--log-level", "debug"}
	switch command {
	case "reboot", "daemon", "check", "status":
		args = append(args,
			"--tasks-dir", n.tasksDir,
			"--boot-id-file", n.bootID,
			"--lock-file", n.lockFile,
			"--reboot-required-file", n.trigger,
			// Tests reboot a node again seconds after its last reboot; the tests of the min
			// reboot interval set it again.
			"--min-reboot-interval", "0")
	}
	switch command {
	case "reboot", "daemon":
		args = append(args, "--reboot-command", "echo rebooted >> "+n.reboots, "--settle", "0s")
	}
	return append(args, extra...)
}

// run runs rebootmgr in this process with the node's flags.
func (n *testNode) run(command string, extra ...string) result {
	n.t.Helper()
	return n.runWith(context.Background(), nil, &fleettest.Log{}, command, extra...)
}

func (n *testNode) runWith(ctx context.Context, environ map[string]string, stderr *fleettest.Log, command string, extra ...string) result {
	n.t.Helper()
	var stdout bytes.Buffer
	e := testEnv(environ)
	e.hostname = func() (string, error) {
		if n.host != "" {
			return n.host, nil
		}
		return n.agent.Node, nil
	}
	code := run(ctx, append([]string{command}, n.args(command, extra...)...), e, &stdout, stderr)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	n.t.Logf("rebootmgr %s: exit %d: %s", command, code, lastLine(r.stderr))
	return r
}

// testEnv is a test's environment: environ, and no configuration file unless it names one (the
// machine's configuration file is not the test's).
func testEnv(environ map[string]string) env {
	return env{
		lookup: func(k string) (string, bool) {
			if v, ok := environ[k]; ok {
				return v, true
			}
			if k == "REBOOTMGR_CONFIG" {
				return "", true
			}
			if strings.HasPrefix(k, "CONSUL_") {
				// The Consul client reads its own from the process's environment (t.Setenv).
				return os.LookupEnv(k)
			}
			return "", false
		},
		environ: func() []string {
			var out []string
			for k, v := range environ {
				out = append(out, k+"="+v)
			}
			return out
		},
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func (n *testNode) kv() *api.KV { return n.agent.Client.KV() }

func (n *testNode) put(key, value string) {
	n.t.Helper()
	if _, err := n.kv().Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
		n.t.Fatal(err)
	}
}

func (n *testNode) get(key string) *api.KVPair {
	n.t.Helper()
	pair, _, err := n.kv().Get(key, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	return pair
}

// stored decodes what n's agent holds at key; the zero value when the key does not exist.
func stored[T any](t testing.TB, n *testNode, key string, decode func([]byte) (T, error)) T {
	t.Helper()
	return consultest.Stored(t, n.kv(), key, decode)
}

func (n *testNode) keys() store.Keys { return store.Keys{Prefix: store.DefaultPrefix} }

func (n *testNode) lockRecord() lock.Record {
	n.t.Helper()
	return stored(n.t, n, n.keys().Lock(), lock.Decode)
}

// holder returns node's entry in the lock ("" phase when it holds none).
func (n *testNode) holder(node string) lock.Holder {
	h, _ := n.lockRecord().Holder(node)
	return h
}

func (n *testNode) inMaintenance() bool {
	n.t.Helper()
	checks, err := n.agent.Client.Agent().Checks()
	if err != nil {
		n.t.Fatal(err)
	}
	_, ok := checks["_node_maintenance"]
	return ok
}

func (n *testNode) expect(r result, code int, mentions ...string) {
	n.t.Helper()
	if r.code != code {
		n.t.Fatalf("want exit %d, got %s", code, r)
	}
	if code != 0 {
		last := lastLine(r.stderr)
		if !strings.HasPrefix(last, "rebootmgr ") {
			n.t.Fatalf("last line of stderr is not the reason: %q", last)
		}
	}
	for _, m := range mentions {
		if !strings.Contains(lastLine(r.stderr)+r.stdout, m) {
			n.t.Fatalf("output does not mention %q: %s", m, r)
		}
	}
}

// waitUntil repeats a blocking query (fetch gets the index to wait on) until it reports done,
// for at most timeout; then the test fails saying what never happened.
func waitUntil(t testing.TB, timeout time.Duration, never func() string, fetch func(q *api.QueryOptions) (done bool, meta *api.QueryMeta, err error)) {
	t.Helper()
	var index uint64
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		done, meta, err := fetch(&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		index = meta.LastIndex
	}
	t.Fatal(never())
}
