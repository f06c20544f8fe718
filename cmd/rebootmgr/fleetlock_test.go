package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// fleetlockRun is `rebootmgr fleetlock` running in this process.
type fleetlockRun struct {
	base   string
	client *http.Client
	log    *fleettest.Log
	cancel context.CancelFunc
	done   chan result
}

var servingAt = regexp.MustCompile(`msg="serving FleetLock".* addr=(\S+)`)

// startFleetlock starts a FleetLock server on n's agent, listening on a free port, and waits
// until it serves.
func (n *testNode) startFleetlock(environ map[string]string, extra ...string) *fleetlockRun {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleetlockRun{log: &fleettest.Log{}, cancel: cancel, done: make(chan result, 1), client: &http.Client{}}
	if _, given := environ["REBOOTMGR_LISTEN"]; !given {
		extra = append([]string{"--listen", "127.0.0.1:0"}, extra...)
	}
	// Hosts here reboot again within seconds; the min reboot interval has its own test.
	extra = append([]string{"--min-reboot-interval", "0"}, extra...)
	// Without a token file, the server serves only when told to serve anyone.
	_, tokens := environ["REBOOTMGR_TOKEN_FILE"]
	_, noAuth := environ["REBOOTMGR_INSECURE_NO_AUTH"]
	if !tokens && !noAuth && !slices.Contains(extra, "--token-file") {
		extra = append([]string{"--insecure-no-auth"}, extra...)
	}
	go func() { f.done <- n.runWith(ctx, environ, f.log, "fleetlock", extra...) }()
	n.t.Cleanup(func() {
		f.stop()
		if n.t.Failed() {
			n.t.Logf("fleetlock log:\n%s", f.log)
		}
	})
	select {
	case <-f.log.Seen("serving FleetLock"):
	case r := <-f.done:
		f.done <- r
		n.t.Fatalf("fleetlock ended before serving: %s", r)
	case <-time.After(20 * time.Second):
		n.t.Fatal("fleetlock never served")
	}
	m := servingAt.FindStringSubmatch(f.log.String())
	if m == nil {
		n.t.Fatalf("no address in the log:\n%s", f.log)
	}
	f.base = "http://" + m[1] + "/"
	return f
}

// stop is a shutdown (SIGTERM); it returns the command's result.
func (f *fleetlockRun) stop() result {
	f.cancel()
	r := <-f.done
	f.done <- r
	return r
}

// zincati sends a request as Zincati does: the protocol's header, a pretty-printed body.
func (f *fleetlockRun) zincati(t testing.TB, endpoint, id, group string, header ...string) (int, fleetlock.Refusal) {
	t.Helper()
	body := fmt.Sprintf("{\n  \"client_params\": {\n    \"id\": %q,\n    \"group\": %q\n  }\n}", id, group)
	req, err := http.NewRequest(http.MethodPost, f.base+"v1/"+endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("fleet-lock-protocol", "true")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r fleetlock.Refusal
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(data, &r); err != nil || r.Kind == "" || r.Value == "" {
			t.Fatalf("%s: %d with a body that is not a refusal: %s", endpoint, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, r
}

// TestFleetLockCommand: the command serves Zincati's requests on the node's agent, takes its
// settings from flags, the environment or the configuration file, refuses settings that make
// no sense before it listens, and ends cleanly when told to.
func TestFleetLockCommand(t *testing.T) {
	n := dev(t)
	f := n.startFleetlock(nil)
	if code, r := f.zincati(t, "pre-reboot", "host-1", "default"); code != 200 {
		t.Fatalf("pre-reboot: %d %+v", code, r)
	}
	if h := n.holder("host-1"); h.Phase != lock.Rebooting || h.Deadline.IsZero() {
		t.Fatalf("lock after pre-reboot: %+v", n.lockRecord())
	}
	n.expect(n.run("status"), 0, "host-1")
	if code, r := f.zincati(t, "steady-state", "host-1", "default"); code != 200 {
		t.Fatalf("steady-state: %d %+v", code, r)
	}
	if len(n.lockRecord().Holders) != 0 {
		t.Fatalf("not released: %+v", n.lockRecord())
	}
	n.expect(n.run("history"), 0, "host-1")
	if r := f.stop(); r.code != 0 {
		t.Fatalf("shutdown: %s", r)
	}

	config := filepath.Join(n.dir, "rebootmgr.default")
	writeFile(t, config, "REBOOTMGR_REBOOT_DEADLINE=0\n")
	f = n.startFleetlock(map[string]string{"REBOOTMGR_CONFIG": config, "REBOOTMGR_LISTEN": "127.0.0.1:0"})
	if code, r := f.zincati(t, "pre-reboot", "host-2", "default"); code != 200 || !n.holder("host-2").Deadline.IsZero() {
		t.Fatalf("pre-reboot with the deadline off in the configuration file: %d %+v, lock %+v", code, r, n.lockRecord())
	}
	// An operator gives a host's place back as a node's.
	n.expect(n.run("unlock", "host-2", "--force"), 0, "released the reboot lock of host-2")
	if len(n.lockRecord().Holders) != 0 {
		t.Fatalf("not unlocked: %+v", n.lockRecord())
	}

	for _, tt := range []struct {
		name    string
		environ map[string]string
		args    []string
		says    string
	}{
		{"no --listen", nil, nil, "--listen"},
		{"a bad --listen", nil, []string{"--listen", "nowhere"}, "HOST:PORT"},
		{"a bad listen in the environment", map[string]string{"REBOOTMGR_LISTEN": "8470"}, nil, "REBOOTMGR_LISTEN"},
		{"a certificate without its key", nil, []string{"--listen", ":0", "--tls-cert", "x.crt"}, "--tls-key"},
		{"a token file that is missing", nil, []string{"--listen", ":0", "--token-file", filepath.Join(n.dir, "nope")}, "token file"},
		{"a negative deadline", nil, []string{"--listen", ":0", "--reboot-deadline", "-1m"}, "--reboot-deadline"},
		{"--node is no flag of it", nil, []string{"--listen", ":0", "--node", "n1"}, "-node"},
		{"a queue bound past what a transaction takes", nil, []string{"--listen", ":0", "--insecure-no-auth", "--max-queue", "5000"}, "--max-queue"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n.expect(n.runWith(t.Context(), tt.environ, &fleettest.Log{}, "fleetlock", tt.args...), exitUsage, tt.says)
		})
	}
}

// TestFleetLockTLSAndTokens: over TLS, with a token per group from the token file.
func TestFleetLockTLSAndTokens(t *testing.T) {
	n := dev(t)
	cert, key, pool := selfSigned(t, n.dir)
	tokens := filepath.Join(n.dir, "tokens")
	writeFile(t, tokens, "# FleetLock tokens\ncompute=c0mpute\n")
	n.put(n.keys().GroupLimit("compute"), "1")
	f := n.startFleetlock(map[string]string{"REBOOTMGR_TOKEN_FILE": tokens}, "--tls-cert", cert, "--tls-key", key)
	f.base = strings.Replace(f.base, "http://", "https://", 1)
	f.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tt := range []struct {
		name   string
		group  string
		header []string
		status int
		kind   string
	}{
		{"no token", "compute", nil, 401, fleetlock.KindUnauthorized},
		{"a bad token", "compute", []string{"Authorization", "Bearer guess"}, 403, fleetlock.KindForbidden},
		{"a group without a token", "default", []string{"Authorization", "Bearer c0mpute"}, 403, fleetlock.KindForbidden},
		{"the group's token", "compute", []string{"Authorization", "Bearer c0mpute"}, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, r := f.zincati(t, "pre-reboot", "host-1", tt.group, tt.header...); code != tt.status || r.Kind != tt.kind {
				t.Fatalf("want %d %q, got %d %+v", tt.status, tt.kind, code, r)
			}
		})
	}
	if h, _ := lockAt(t, n, "compute").Holder("host-1"); h.Phase != lock.Rebooting {
		t.Fatalf("lock of group compute: %+v", lockAt(t, n, "compute"))
	}
	plain := &fleetlockRun{base: strings.Replace(f.base, "https://", "http://", 1), client: &http.Client{}}
	req, _ := http.NewRequest(http.MethodPost, plain.base+"v1/pre-reboot", strings.NewReader("{}"))
	if resp, err := plain.client.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("served without TLS")
		}
	}
}

// TestFleetLockBesideDaemons: a node rebooted by rebootmgr and a FleetLock host in the same
// group of limit 1, asking at the same instant round after round: exactly one holds a place
// each time, and the other gets it once the first is done.
func TestFleetLockBesideDaemons(t *testing.T) {
	n := dev(t)
	f := n.startFleetlock(nil)
	const host = "zincati-1"

	// The node prepares (its pre-boot task waits): the host waits too.
	gate := filepath.Join(n.dir, "go")
	n.task("pre", "10-wait", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.05; done", gate))
	first := make(chan result, 1)
	go func() { first <- n.run("reboot") }()
	waitLock(t, n, "default", func(r lock.Record) bool { return len(r.Holders) == 1 })
	if code, refusal := f.zincati(t, "pre-reboot", host, "default"); code != 423 || refusal.Kind != fleetlock.KindLockHeld || !strings.Contains(refusal.Value, "n1 (preparing") {
		t.Fatalf("the host while the node prepares: %d %+v", code, refusal)
	}
	writeFile(t, gate, "")
	n.expect(<-first, 0, "reboot started")
	n.boot()
	n.expect(n.run("reboot"), 0, "reboot finished")
	if err := os.Remove(filepath.Join(n.tasksDir, "pre_boot_tasks", "10-wait")); err != nil {
		t.Fatal(err)
	}

	for round := range 6 {
		var wg sync.WaitGroup
		var r result
		var code int
		var refusal fleetlock.Refusal
		start := make(chan struct{})
		wg.Go(func() { <-start; r = n.run("reboot") })
		wg.Go(func() { <-start; code, refusal = f.zincati(t, "pre-reboot", host, "default") })
		close(start)
		wg.Wait()
		switch {
		case r.code == 0 && code == 423 && refusal.Kind == fleetlock.KindLockHeld:
			// The node won: the host waits until it has finished.
			n.boot()
			n.expect(n.run("reboot"), 0, "reboot finished")
			if code, refusal = f.zincati(t, "pre-reboot", host, "default"); code != 200 {
				t.Fatalf("round %d: the host after the node: %d %+v", round, code, refusal)
			}
			f.zincati(t, "steady-state", host, "default")
		case code == 200 && r.code == exitLockHeld:
			if !strings.Contains(r.stderr, host) {
				t.Fatalf("round %d: the node's refusal does not name the host: %s", round, r)
			}
			f.zincati(t, "steady-state", host, "default")
			n.expect(n.run("reboot"), 0, "reboot started")
			if code, refusal = f.zincati(t, "pre-reboot", host, "default"); code != 423 || refusal.Kind != fleetlock.KindLockHeld || !strings.Contains(refusal.Value, "n1") {
				t.Fatalf("round %d: the host while the node reboots: %d %+v", round, code, refusal)
			}
			n.boot()
			n.expect(n.run("reboot"), 0, "reboot finished")
		default:
			t.Fatalf("round %d: want exactly one place: the node %s; the host %d %+v", round, r, code, refusal)
		}
		if rec := n.lockRecord(); len(rec.Holders) != 0 {
			t.Fatalf("round %d: lock left %+v", round, rec)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir, and returns their paths
// and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return certFile, keyFile, pool
}

// TestFleetLockDaemonWaits: a daemon asked to reboot its node waits while a FleetLock host
// holds the group's only place, starts the moment the host's steady-state gives it back, and
// the host then waits for the node.
func TestFleetLockDaemonWaits(t *testing.T) {
	n := dev(t)
	f := n.startFleetlock(nil)
	if code, r := f.zincati(t, "pre-reboot", "zincati-1", "default"); code != 200 {
		t.Fatalf("pre-reboot: %d %+v", code, r)
	}
	d := n.startDaemon()
	n.put(n.keys().RebootRequired("n1"), "kernel")
	fleettest.WaitSeen(t, d.Log.Seen("reboot lock held by zincati-1"), "the daemon waiting for the host")
	if n.rebootCount() != 0 {
		t.Fatal("the node rebooted while the host held the place")
	}
	if code, r := f.zincati(t, "steady-state", "zincati-1", "default"); code != 200 {
		t.Fatalf("steady-state: %d %+v", code, r)
	}
	waitFile(t, n.reboots)
	if code, r := f.zincati(t, "pre-reboot", "zincati-1", "default"); code != 423 || r.Kind != fleetlock.KindLockHeld || !strings.Contains(r.Value, "n1 (rebooting") {
		t.Fatalf("the host while the node reboots: %d %+v", code, r)
	}
	// A FleetLock client that calls itself n1 neither shares the node's place nor gives it back.
	if code, r := f.zincati(t, "pre-reboot", "n1", "default"); code != 409 || r.Kind != fleetlock.KindIDInUse || !strings.Contains(r.Value, "rebootmgr's daemon reboots") {
		t.Fatalf("pre-reboot named like the rebooting node: %d %+v", code, r)
	}
	if code, r := f.zincati(t, "steady-state", "n1", "default"); code != 200 || n.holder("n1").Phase != lock.Rebooting {
		t.Fatalf("steady-state named like the rebooting node: %d %+v, lock %+v", code, r, n.lockRecord())
	}
}

// TestFleetLockHostKeepsItsTurn: a FleetLock host waits in the queue and asks once per tick of
// its own (Zincati: every 5 minutes); a place opens for it in between. The server answers for it
// at once and keeps its turn: the daemon that gave the place back does not pass over it, the
// node queued behind it does not take the place, and the host takes it when it asks again.
func TestFleetLockHostKeepsItsTurn(t *testing.T) {
	nodes := cluster(t, []string{"", ""})
	n0, n1 := nodes[0], nodes[1]
	f := n0.startFleetlock(nil)
	const host = "zincati-1"
	d := n0.startDaemon()
	n0.put(n0.keys().RebootRequired(n0.agent.Node), "")
	if i := waitAnyReboot(t, nodes, map[int]bool{}); i != 0 {
		t.Fatalf("%s rebooted first", nodes[i].agent.Node)
	}
	if code, refusal := f.zincati(t, "pre-reboot", host, "default"); code != 423 || refusal.Kind != fleetlock.KindLockHeld {
		t.Fatalf("the host while n00 reboots: %d %+v", code, refusal)
	}
	n1.put(n1.keys().RebootRequired(n1.agent.Node), "")
	n1.expect(n1.run("reboot", "--check-triggers"), exitLockHeld, n0.agent.Node)

	d.stop()
	n0.boot()
	d = n0.startDaemon()
	fleettest.WaitSeen(t, d.Log.Seen("idle: reboot finished"), "the post-boot part of "+n0.agent.Node)
	// The host has had its time to answer, and has not asked: the daemon finds it answered.
	fleettest.WaitSeen(t, d.Log.Seen("every node told of a place answered"), "the daemon's pass over the nodes it told of the place")
	if q := queueOf(t, n0); len(q.Entries) == 0 || q.Entries[0].Node != host || q.Entries[0].Blocked != "" {
		t.Fatalf("the host lost its turn: %+v", q.Entries)
	}
	n1.expect(n1.run("reboot", "--check-triggers"), exitLockHeld, host)
	if code, refusal := f.zincati(t, "pre-reboot", host, "default"); code != 200 {
		t.Fatalf("the host asking again: %d %+v", code, refusal)
	}
}
