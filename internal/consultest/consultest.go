// Package consultest starts real Consul agents on loopback for tests: a dev agent for one
// node, or a server and client agents for several. It never fakes Consul.
package consultest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Version is the Consul version the tests run against (scripts/install-consul builds it).
const Version = "1.20.1"

// startTimeout bounds how long an agent may take to become ready.
const startTimeout = 60 * time.Second

// Binary returns the consul binary: $CONSUL_BIN, else the one scripts/install-consul cached,
// else consul on $PATH. Without one the test fails and says how to get it.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CONSUL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CONSUL_BIN=%s: %v", p, err)
		}
		return p
	}
	cache := os.Getenv("REBOOTMGR_CACHE")
	if cache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(dir, "rebootmgr")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "consul-"+Version, "consul")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p
	}
	t.Fatalf("no consul agent to test against: run the tests with `make test`, which builds Consul v%s once with scripts/install-consul, or set CONSUL_BIN", Version)
	return ""
}

// Agent is a running Consul agent.
type Agent struct {
	Node     string
	HTTPAddr string
	SerfAddr string
	Client   *api.Client
	// SerfWANAddr is the WAN gossip address of a server started by WANServer ("" otherwise).
	SerfWANAddr string

	t      testing.TB
	bin    string
	args   []string
	dir    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
}

type ports struct{ http, serf, server, serfWAN int }

func freePorts(t testing.TB) ports {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var p [4]int
	for i := range p {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		p[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports{http: p[0], serf: p[1], server: p[2], serfWAN: p[3]}
}

// commonArgs are the flags every test agent takes: loopback only, the listeners tests do not
// use switched off, and script checks allowed (the tests' checks are scripts).
func commonArgs(node string, p ports) []string {
	return []string{
		"-node", node,
		"-bind", "127.0.0.1", "-client", "127.0.0.1", "-advertise", "127.0.0.1",
		"-http-port", strconv.Itoa(p.http),
		"-serf-lan-port", strconv.Itoa(p.serf),
		"-dns-port", "-1", "-grpc-port", "-1",
		"-hcl", "ports { grpc_tls = -1 }",
		"-hcl", "enable_script_checks = true",
		"-log-level", "debug",
	}
}

// Dev starts a dev agent (a server holding everything in memory) for node, and stops it when
// the test ends. Extra arguments go to the agent.
func Dev(t testing.TB, node string, extra ...string) *Agent {
	t.Helper()
	return start(t, node, func(p ports) []string {
		args := append([]string{"agent", "-dev", "-server-port", strconv.Itoa(p.server), "-serf-wan-port", "-1"}, commonArgs(node, p)...)
		return append(args, extra...)
	})
}

// Server starts a server that keeps its state on disk, so that it survives a restart (a dev
// agent forgets everything), for node. Extra arguments go to the agent.
func Server(t testing.TB, node string, extra ...string) *Agent {
	t.Helper()
	dir := t.TempDir()
	return start(t, node, func(p ports) []string {
		args := append([]string{"agent", "-server", "-bootstrap-expect", "1", "-data-dir", dir,
			"-server-port", strconv.Itoa(p.server), "-serf-wan-port", "-1",
			"-hcl", "performance { raft_multiplier = 1 }", "-hcl", "disable_update_check = true"}, commonArgs(node, p)...)
		return append(args, extra...)
	})
}

// WANServer starts a server of datacenter dc for node, as Server does but with its WAN gossip
// on, joined over the WAN to the server join (nil: none, the first datacenter). A client
// agent of dc is Client with "-datacenter", dc.
func WANServer(t testing.TB, node, dc string, join *Agent, extra ...string) *Agent {
	t.Helper()
	dir := t.TempDir()
	a := start(t, node, func(p ports) []string {
		args := append([]string{"agent", "-server", "-bootstrap-expect", "1", "-data-dir", dir, "-datacenter", dc,
			"-server-port", strconv.Itoa(p.server), "-serf-wan-port", strconv.Itoa(p.serfWAN),
			"-hcl", "performance { raft_multiplier = 1 }", "-hcl", "disable_update_check = true"}, commonArgs(node, p)...)
		if join != nil {
			args = append(args, "-retry-join-wan", join.SerfWANAddr)
		}
		return append(args, extra...)
	})
	for i, arg := range a.args {
		if arg == "-serf-wan-port" {
			a.SerfWANAddr = "127.0.0.1:" + a.args[i+1]
		}
	}
	return a
}

// ManagementToken is the token of agents started with ACLs.
const ManagementToken = "d0c7a8d4-6b1c-4e55-9f2a-3c1e2b7a9f00"

// DevACL starts a dev agent with ACLs enabled and denying by default; its Client uses
// ManagementToken.
func DevACL(t testing.TB, node string) *Agent {
	t.Helper()
	hcl := `acl { enabled = true, default_policy = "deny", tokens { initial_management = "` + ManagementToken + `", agent = "` + ManagementToken + `" } }`
	return Dev(t, node, "-hcl", hcl)
}

// Client starts a client agent for node that joins the agent join. Extra arguments go to the
// agent.
func Client(t testing.TB, node string, join *Agent, extra ...string) *Agent {
	t.Helper()
	dir := t.TempDir()
	return start(t, node, func(p ports) []string {
		args := append([]string{"agent", "-data-dir", dir, "-retry-join", join.SerfAddr, "-hcl", "check_update_interval = \"0s\""}, commonArgs(node, p)...)
		return append(args, extra...)
	})
}

// portAttempts bounds how often an agent is started again on other ports: a port found free
// can be taken by another test before the agent binds it.
const portAttempts = 5

// errPortTaken means the agent could not bind a port it was given.
var errPortTaken = errors.New("a port was taken before the agent bound it")

// DevStock starts a dev agent as Dev does, but with script checks as a packaged agent has
// them unless told otherwise: refused (no enable_script_checks). An agent that exits while it
// starts (it refuses its configuration) is the error, with its log. Extra arguments go to the
// agent.
func DevStock(t testing.TB, node string, extra ...string) (*Agent, error) {
	t.Helper()
	return tryStart(t, node, func(p ports) []string {
		var common []string
		for _, arg := range commonArgs(node, p) {
			if arg == "enable_script_checks = true" {
				// And its "-hcl" before it.
				common = common[:len(common)-1]
				continue
			}
			common = append(common, arg)
		}
		args := append([]string{"agent", "-dev", "-server-port", strconv.Itoa(p.server), "-serf-wan-port", "-1"}, common...)
		return append(args, extra...)
	})
}

// start starts an agent with the arguments args makes for a set of free ports, picking other
// ports when one was taken in between.
func start(t testing.TB, node string, args func(ports) []string) *Agent {
	t.Helper()
	a, err := tryStart(t, node, args)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryStart is start, returning an agent's failure to start rather than failing the test.
func tryStart(t testing.TB, node string, args func(ports) []string) (*Agent, error) {
	t.Helper()
	a := &Agent{Node: node, t: t, bin: Binary(t), dir: t.TempDir()}
	t.Cleanup(func() {
		a.Kill()
		if t.Failed() {
			t.Logf("consul agent %s log (last 40 lines):\n%s", node, a.tail(40))
		}
	})
	for attempt := 1; ; attempt++ {
		p := freePorts(t)
		a.args = args(p)
		a.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", p.http)
		a.SerfAddr = fmt.Sprintf("127.0.0.1:%d", p.serf)
		cfg := &api.Config{Address: a.HTTPAddr}
		for _, arg := range a.args {
			if strings.Contains(arg, "initial_management") {
				cfg.Token = ManagementToken
			}
		}
		client, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		a.Client = client
		err = a.launch()
		if err == nil {
			return a, nil
		}
		a.Kill()
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return nil, err
		}
		t.Logf("consul agent %s: %v; again on other ports", node, err)
	}
}

// Start starts the agent (again) and waits until it serves its node's catalog entry.
func (a *Agent) Start() {
	a.t.Helper()
	if err := a.launch(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *Agent) launch() error {
	a.mu.Lock()
	a.log = &bytes.Buffer{}
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout = &lockedWriter{mu: &a.mu, w: a.log}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("start consul agent %s: %w", a.Node, err)
	}
	a.cmd = cmd
	exited := make(chan struct{})
	a.exited = exited
	a.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return a.waitReady()
}

// WaitReady waits until the agent has a leader and its node is in the catalog.
func (a *Agent) WaitReady() {
	a.t.Helper()
	if err := a.waitReady(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *Agent) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		q := (&api.QueryOptions{}).WithContext(ctx)
		node, _, err := a.Client.Catalog().Node(a.Node, q)
		if err == nil && node != nil {
			if leader, err := a.Client.Status().Leader(); err == nil && leader != "" {
				return nil
			}
		}
		select {
		case <-a.exited:
			log := a.tail(40)
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("consul agent %s: %w", a.Node, errPortTaken)
			}
			return fmt.Errorf("consul agent %s exited while starting:\n%s", a.Node, log)
		case <-ctx.Done():
			return fmt.Errorf("consul agent %s not ready after %s (last error: %v):\n%s", a.Node, startTimeout, err, a.tail(40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Leave makes the agent leave the cluster gracefully, as `consul leave` does, and waits until
// it has exited: the servers deregister its node, and its services with it, from the catalog.
// Start brings it back, with the services it had.
func (a *Agent) Leave() {
	a.t.Helper()
	a.mu.Lock()
	exited := a.exited
	a.mu.Unlock()
	if err := a.Client.Agent().Leave(); err != nil {
		a.t.Fatalf("consul agent %s: leave: %v", a.Node, err)
	}
	select {
	case <-exited:
	case <-time.After(startTimeout):
		a.t.Fatalf("consul agent %s still running %s after it left", a.Node, startTimeout)
	}
}

// Kill stops the agent at once (SIGKILL) and waits for it to exit.
func (a *Agent) Kill() {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

func (a *Agent) tail(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.log == nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(a.log.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// WaitDatacenters waits until the agent reaches every datacenter of dcs: each is in its
// catalog's list, and answers a read forwarded to it over the WAN.
func (a *Agent) WaitDatacenters(dcs ...string) {
	a.t.Helper()
	deadline := time.Now().Add(startTimeout)
	var last error
	for _, dc := range dcs {
		for {
			_, _, last = a.Client.KV().Get("consultest/wan", &api.QueryOptions{Datacenter: dc})
			if last == nil {
				break
			}
			if time.Now().After(deadline) {
				a.t.Fatalf("consul agent %s cannot reach datacenter %s after %s: %v", a.Node, dc, startTimeout, last)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
