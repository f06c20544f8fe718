package fleetlock

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

var keys = store.Keys{Prefix: store.DefaultPrefix}

// serve starts a FleetLock server on client's agent, as `rebootmgr fleetlock` wires it.
func serve(t *testing.T, client *api.Client, tokens Tokens) string {
	t.Helper()
	return serveLocks(t, &Locks{Client: client, Keys: keys, PythonMarkers: true}, tokens)
}

// serveLocks starts a FleetLock server on locks.
func serveLocks(t *testing.T, locks *Locks, tokens Tokens) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	locks.Logger = log
	srv := httptest.NewServer(&Handler{Locks: locks, Tokens: tokens, Logger: log})
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// zincatiBody is a request's body as Zincati sends it: pretty-printed.
func zincatiBody(id, group string) string {
	return fmt.Sprintf("{\n  \"client_params\": {\n    \"id\": %q,\n    \"group\": %q\n  }\n}", id, group)
}

type answer struct {
	status  int
	refusal Refusal
	raw     string
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.raw) }

// post sends a request as Zincati does: POST base+v1/<api> with the protocol's header, and any
// header given besides (a nil value takes one away).
func post(t *testing.T, base, endpoint, body string, header map[string]*string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"v1/"+endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("fleet-lock-protocol", "true")
	for k, v := range header {
		if v == nil {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, *v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, raw: string(data)}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(data, &a.refusal); err != nil || a.refusal.Kind == "" || a.refusal.Value == "" {
			t.Fatalf("%s: a refusal that is not {\"kind\", \"value\"}, both set: %s (%v)", endpoint, data, err)
		}
		if Status(a.refusal.Kind) != resp.StatusCode {
			t.Fatalf("%s: kind %s answered with %d, not %d", endpoint, a.refusal.Kind, resp.StatusCode, Status(a.refusal.Kind))
		}
	}
	return a
}

func (a answer) is(t *testing.T, status int, kind string, mentions ...string) {
	t.Helper()
	if a.status != status || a.refusal.Kind != kind {
		t.Fatalf("want %d %q, got %s", status, kind, a)
	}
	for _, m := range mentions {
		if !strings.Contains(a.refusal.Value, m) {
			t.Fatalf("the answer does not mention %q: %s", m, a)
		}
	}
}

func put(t *testing.T, client *api.Client, key, value string) {
	t.Helper()
	if _, err := client.KV().Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, client *api.Client, key string) {
	t.Helper()
	if _, err := client.KV().Delete(key, nil); err != nil {
		t.Fatal(err)
	}
}

func lockOf(t *testing.T, client *api.Client, group string) lock.Record {
	t.Helper()
	return consultest.Stored(t, client.KV(), keys.GroupLock(group), lock.Decode)
}

func fleetOf(t *testing.T, client *api.Client) lock.Fleet {
	t.Helper()
	pair, _, err := client.KV().Get(keys.Holders(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pair == nil {
		return lock.Fleet{}
	}
	f, err := lock.DecodeFleet(pair.Value)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func historyOf(t *testing.T, client *api.Client, group string) history.Log {
	t.Helper()
	pair, _, err := client.KV().Get(keys.GroupHistory(group), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pair == nil {
		return history.Log{}
	}
	l, err := history.Decode(pair.Value)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ptr(s string) *string { return &s }

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestFleetLockZincati: requests exactly as Zincati sends them. A host Consul knows no node of
// takes the place at once, in phase rebooting, in the group's record and the fleet's; its
// pre-reboot again is 200 and writes nothing; a steady-state from another host is 200 and
// changes nothing; its own gives the place back and records the reboot in the history.
func TestFleetLockZincati(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	base := serve(t, c, nil)
	const host = "8b1ed7bd5a8d4d9aa4b5b0b0c2b9a0f1"
	post(t, base, "pre-reboot", zincatiBody(host, "default"), nil).is(t, 200, "")
	h, ok := lockOf(t, c, "default").Holder(host)
	if !ok || h.Phase != lock.Rebooting || h.TriggeredBy != TriggeredBy {
		t.Fatalf("lock after pre-reboot: %+v", lockOf(t, c, "default"))
	}
	if g, ok := fleetOf(t, c).Group(host); !ok || g != store.DefaultGroup {
		t.Fatalf("fleet's holders after pre-reboot: %+v", fleetOf(t, c))
	}

	before := agent.KVState()
	post(t, base, "pre-reboot", zincatiBody(host, "default"), nil).is(t, 200, "")
	post(t, base, "steady-state", zincatiBody("another", "default"), nil).is(t, 200, "")
	// The group left out is the default group.
	post(t, base, "steady-state", `{"client_params": {"id": "another"}, "extra": [1, 2]}`, nil).is(t, 200, "")
	if after := agent.KVState(); after != before {
		t.Fatalf("written by a recursive pre-reboot or a stranger's steady-state:\n%s\n%s", before, after)
	}
	post(t, base, "pre-reboot", zincatiBody("another", "default"), nil).is(t, 423, KindLockHeld, host)

	post(t, base, "steady-state", zincatiBody(host, "default"), nil).is(t, 200, "")
	if rec := lockOf(t, c, "default"); len(rec.Holders) != 0 || len(fleetOf(t, c).Holders) != 0 {
		t.Fatalf("not released: %+v %+v", rec, fleetOf(t, c))
	}
	l := historyOf(t, c, "default")
	if len(l.Entries) != 1 || l.Entries[0].Node != host || l.Entries[0].Outcome != history.Finished {
		t.Fatalf("history: %+v", l.Entries)
	}
	post(t, base, "steady-state", zincatiBody(host, "default"), nil).is(t, 200, "")
	if l := historyOf(t, c, "default"); len(l.Entries) != 1 {
		t.Fatalf("a second steady-state recorded again: %+v", l.Entries)
	}
}

// TestFleetLockRefusals: every refusal has its kind and status, and a body of both.
func TestFleetLockRefusals(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	base := serve(t, c, nil)
	put(t, c, keys.GroupLimit("full"), "1")
	put(t, c, keys.GroupLimit("compute"), "1")
	post(t, base, "pre-reboot", zincatiBody("holder", "full"), nil).is(t, 200, "")

	for _, tt := range []struct {
		name     string
		endpoint string
		body     string
		header   map[string]*string
		status   int
		kind     string
		mentions []string
	}{
		{"no protocol header", "pre-reboot", zincatiBody("h1", "default"), map[string]*string{"fleet-lock-protocol": nil}, 400, KindMissingHeader, []string{"fleet-lock-protocol"}},
		{"protocol header false", "steady-state", zincatiBody("h1", "default"), map[string]*string{"fleet-lock-protocol": ptr("false")}, 400, KindMissingHeader, nil},
		{"not JSON", "pre-reboot", "id=h1", nil, 400, KindBadRequest, []string{"not a FleetLock request"}},
		{"no id", "pre-reboot", `{"client_params": {"group": "default"}}`, nil, 400, KindBadRequest, []string{"client_params.id"}},
		{"no client_params", "steady-state", `{"id": "h1"}`, nil, 400, KindBadRequest, []string{"client_params.id"}},
		{"a group that climbs out of its keys", "pre-reboot", zincatiBody("h1", ".."), nil, 400, KindBadRequest, []string{"client_params.group"}},
		{"a group with a slash", "pre-reboot", zincatiBody("h1", "a/b"), nil, 400, KindBadRequest, []string{"client_params.group"}},
		{"an id with a slash", "pre-reboot", zincatiBody("x/../n1", "default"), nil, 400, KindBadRequest, []string{"client_params.id"}},
		{"a body over the bound", "pre-reboot", `{"client_params": {"id": "h1"}, "pad": "` + strings.Repeat("x", MaxBody) + `"}`, nil, 400, KindBadRequest, []string{"over"}},
		{"no endpoint", "unlock", zincatiBody("h1", "default"), nil, 404, KindNotFound, nil},
		{"lock full", "pre-reboot", zincatiBody("h1", "full"), nil, 423, KindLockHeld, []string{"holder"}},
		{"holds a place in another group", "pre-reboot", zincatiBody("holder", "default"), nil, 409, KindIDInUse, []string{"group full"}},
		{"waits in another group's queue", "pre-reboot", zincatiBody("h1", "default"), nil, 409, KindIDInUse, []string{"queue of group full"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			post(t, base, tt.endpoint, tt.body, tt.header).is(t, tt.status, tt.kind, tt.mentions...)
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(base + "v1/pre-reboot")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r Refusal
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 405 || r.Kind != KindMethodNotAllowed || r.Value == "" {
			t.Fatalf("GET: %d %+v %v", resp.StatusCode, r, err)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		for _, key := range []string{keys.Stop(), keys.GroupStop("compute")} {
			put(t, c, key, "kernel rollout paused")
			post(t, base, "pre-reboot", zincatiBody("h3", "compute"), nil).is(t, 423, KindStopped, "kernel rollout paused")
			del(t, c, key)
		}
		if len(lockOf(t, c, "compute").Holders) != 0 {
			t.Fatalf("took a place while stopped: %+v", lockOf(t, c, "compute"))
		}
		// A holder's pre-reboot is refused while stopped, and its place stays; its steady-state
		// gives the place back, as a daemon's holder finishes its reboot under a stop flag.
		put(t, c, keys.GroupStop("full"), "look first")
		post(t, base, "pre-reboot", zincatiBody("holder", "full"), nil).is(t, 423, KindStopped, "look first")
		if _, ok := lockOf(t, c, "full").Holder("holder"); !ok {
			t.Fatal("the stop flag took the place away")
		}
		post(t, base, "steady-state", zincatiBody("holder", "full"), nil).is(t, 200, "")
		if _, ok := lockOf(t, c, "full").Holder("holder"); ok {
			t.Fatal("the holder kept its place after its steady-state while stopped")
		}
		post(t, base, "pre-reboot", zincatiBody("h1", "full"), nil).is(t, 423, KindStopped, "look first")
		del(t, c, keys.GroupStop("full"))
	})
	t.Run("unreadable limit", func(t *testing.T) {
		put(t, c, keys.GroupLimit("odd"), "many")
		post(t, base, "pre-reboot", zincatiBody("h1", "odd"), nil).is(t, 500, KindError, "the server's log")
	})
	t.Run("consul unavailable", func(t *testing.T) {
		down, err := api.NewClient(&api.Config{Address: closedAddr(t)})
		if err != nil {
			t.Fatal(err)
		}
		post(t, serve(t, down, nil), "pre-reboot", zincatiBody("h1", "default"), nil).is(t, 503, KindConsulUnavailable)
	})
}

// TestFleetLockTokens: with tokens, a group's requests need its token, as a bearer token or the
// password of Basic authentication; * serves the groups not named; an unnamed group is refused
// without it.
func TestFleetLockTokens(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	tokens, err := ReadTokens(strings.NewReader("# tokens\ncompute = s3cret\n\n*=other\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, agent.Client, tokens)
	onlyCompute := serve(t, agent.Client, Tokens{"compute": "s3cret"})
	basic := func(user, password string) *string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, password)
		return ptr(r.Header.Get("Authorization"))
	}
	for _, tt := range []struct {
		name   string
		base   string
		group  string
		auth   *string
		status int
		kind   string
	}{
		{"no token", base, "compute", nil, 401, KindUnauthorized},
		{"wrong token", base, "compute", ptr("Bearer nope"), 403, KindForbidden},
		{"another group's token", base, "compute", ptr("Bearer other"), 403, KindForbidden},
		{"not bearer", base, "compute", ptr("Token s3cret"), 401, KindUnauthorized},
		{"a group no token serves", onlyCompute, "default", ptr("Bearer s3cret"), 403, KindForbidden},
		{"bearer", base, "compute", ptr("Bearer s3cret"), 200, ""},
		{"basic, the token as password", base, "compute", basic("compute", "s3cret"), 200, ""},
		{"*", base, "default", ptr("bearer other"), 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]*string{}
			if tt.auth != nil {
				header["Authorization"] = tt.auth
			}
			post(t, tt.base, "steady-state", zincatiBody("h1", tt.group), header).is(t, tt.status, tt.kind)
		})
	}
	for _, bad := range []string{"compute\n", "compute=\n", "a/b=x\n", "x=1\nx=2\n", "# nothing\n"} {
		if _, err := ReadTokens(strings.NewReader(bad), "bad"); err == nil {
			t.Errorf("token file %q read without an error", bad)
		}
	}
}

// TestFleetLockRace: two servers, each on its own agent, and two hosts asking at the same
// instant for the one place of a group: exactly one is granted; the other is once the first
// has given it back.
func TestFleetLockRace(t *testing.T) {
	server := consultest.Dev(t, "n1")
	client := consultest.Client(t, "n2", server)
	bases := []string{serve(t, server.Client, nil), serve(t, client.Client, nil)}
	hosts := []string{"host-a", "host-b"}
	for round := range 5 {
		answers := make([]answer, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range hosts {
			wg.Go(func() {
				<-start
				answers[i] = post(t, bases[i], "pre-reboot", zincatiBody(hosts[i], "default"), nil)
			})
		}
		close(start)
		wg.Wait()
		var won, lost int
		switch {
		case answers[0].status == 200 && answers[1].status == 423:
			won, lost = 0, 1
		case answers[1].status == 200 && answers[0].status == 423:
			won, lost = 1, 0
		default:
			t.Fatalf("round %d: want one 200 and one 423: %s, %s", round, answers[0], answers[1])
		}
		answers[lost].is(t, 423, KindLockHeld, hosts[won])
		if rec := lockOf(t, server.Client, "default"); len(rec.Holders) != 1 || rec.Holders[0].Node != hosts[won] {
			t.Fatalf("round %d: lock %+v", round, rec)
		}
		// The loser asks the other server once the winner is done.
		post(t, bases[lost], "steady-state", zincatiBody(hosts[won], "default"), nil).is(t, 200, "")
		post(t, bases[won], "pre-reboot", zincatiBody(hosts[lost], "default"), nil).is(t, 200, "")
		post(t, bases[won], "steady-state", zincatiBody(hosts[lost], "default"), nil).is(t, 200, "")
	}
	if l := historyOf(t, server.Client, "default"); len(l.Entries) != 10 {
		t.Fatalf("history: %d entries, want 10", len(l.Entries))
	}
}

// TestFleetLockQuorum: a host whose Consul node runs a service tagged rebootmgr is judged by its
// rules, with every reboot in flight counted: with min_passing=2 and one of two instances
// critical it waits; and its steady-state gives the place back only once its own instance
// passes, and not while it is gone from the catalog.
func TestFleetLockQuorum(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	base := serve(t, c, nil)
	put(t, c, keys.GroupLimit("other"), "1")
	tags := []string{"rebootmgr", "min_passing=2"}
	agent.RegisterService("gateway", tags, "critical")
	agent.RegisterRemote("gw2", "gateway", tags, "passing")

	post(t, base, "pre-reboot", zincatiBody("gw2", "default"), nil).is(t, 423, KindUnhealthy, "min_passing=2", "n1")
	if len(lockOf(t, c, "default").Holders) != 0 {
		t.Fatal("took a place while unhealthy")
	}
	agent.SetService("gateway", "passing")
	post(t, base, "pre-reboot", zincatiBody("gw2", "default"), nil).is(t, 200, "")

	// n1 shares the service and counts gw2 as failing while it holds its place: n1's own
	// FleetLock request (in another group) waits.
	post(t, base, "pre-reboot", zincatiBody("n1", "other"), nil).is(t, 423, KindUnhealthy, "gw2", "reboot in flight")

	agent.RegisterRemote("gw2", "gateway", tags, "critical")
	post(t, base, "steady-state", zincatiBody("gw2", "default"), nil).is(t, 423, KindUnhealthy, "gw2")
	if _, ok := lockOf(t, c, "default").Holder("gw2"); !ok {
		t.Fatal("released while its service failed")
	}
	// Back from its reboot, its agent not in the cluster yet: rebootmgr remembers gw2 running
	// the gateway, so its steady-state waits for it rather than passing with nothing to judge.
	if _, err := c.Catalog().Deregister(&api.CatalogDeregistration{Node: "gw2"}, nil); err != nil {
		t.Fatal(err)
	}
	post(t, base, "steady-state", zincatiBody("gw2", "default"), nil).is(t, 423, KindUnhealthy, "gw2: gone from Consul's catalog")
	agent.RegisterRemote("gw2", "gateway", tags, "passing")
	post(t, base, "steady-state", zincatiBody("gw2", "default"), nil).is(t, 200, "")
	if len(lockOf(t, c, "default").Holders) != 0 {
		t.Fatal("not released once healthy")
	}
	post(t, base, "pre-reboot", zincatiBody("n1", "other"), nil).is(t, 200, "")
}

// TestFleetLockDeadline: a FleetLock holder past its deadline stops its group, as a daemon's
// holder does, once, with a reason naming it and an entry in the history; its place stays until
// it says steady-state (it finishes under the stop), and nothing else in the group moves until
// an operator has looked.
func TestFleetLockDeadline(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	base := serveLocks(t, &Locks{Client: c, Keys: keys, Deadline: time.Minute, By: "rebootmgr fleetlock on test", Now: clock}, nil)
	put(t, c, keys.GroupLimit("workers"), "1")
	post(t, base, "pre-reboot", zincatiBody("host-a", "workers"), nil).is(t, 200, "")
	if h, _ := lockOf(t, c, "workers").Holder("host-a"); !h.Deadline.Equal(now.Add(time.Minute)) {
		t.Fatalf("deadline: %+v", h)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()

	post(t, base, "pre-reboot", zincatiBody("host-b", "workers"), nil).is(t, 423, KindStopped, "host-a did not finish its reboot by its deadline")
	pair, _, err := c.KV().Get(keys.GroupStop("workers"), nil)
	if err != nil || pair == nil || !strings.Contains(string(pair.Value), "rebootmgr fleetlock on test") {
		t.Fatalf("group stop flag: %v %v", pair, err)
	}
	post(t, base, "pre-reboot", zincatiBody("host-b", "workers"), nil).is(t, 423, KindStopped)
	if _, ok := lockOf(t, c, "workers").Holder("host-a"); !ok {
		t.Fatal("the overdue holder lost its place")
	}
	l := historyOf(t, c, "workers")
	if len(l.Entries) != 1 || l.Entries[0].Node != "host-a" || l.Entries[0].Outcome != history.DeadlinePassed {
		t.Fatalf("history: %+v", l.Entries)
	}
	// Back, it finishes its reboot under the stop; the group waits for an operator.
	post(t, base, "steady-state", zincatiBody("host-a", "workers"), nil).is(t, 200, "")
	post(t, base, "pre-reboot", zincatiBody("host-b", "workers"), nil).is(t, 423, KindStopped, "host-a did not finish")
	if l := historyOf(t, c, "workers"); len(l.Entries) != 2 || l.Entries[1].Outcome != history.Finished {
		t.Fatalf("history: %+v", l.Entries)
	}
}

// TestFleetLockServerShutdown: when told to stop, the server takes no new connection and lets a
// request under way finish with its answer.
func TestFleetLockServerShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusOK)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	srv := &Server{Handler: handler, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+l.Addr().String()+"/v1/pre-reboot", "application/json", strings.NewReader("{}"))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-entered
	cancel()
	// Shutdown closes the listener first: a new connection is refused.
	for {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		runtime.Gosched()
	}
	close(release)
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("the request under way got %d", code)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after shutdown: %v", err)
	}
}

// TestFleetLockMinRebootInterval: a host that finished a reboot is granted its next only once
// the min reboot interval has passed since; before, the refusal says until when.
func TestFleetLockMinRebootInterval(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	base := serveLocks(t, &Locks{Client: c, Keys: keys, MinRebootInterval: time.Hour, Now: clock}, nil)
	put(t, c, keys.GroupLimit("workers"), "1")
	post(t, base, "pre-reboot", zincatiBody("host-a", "workers"), nil).is(t, 200, "")
	post(t, base, "steady-state", zincatiBody("host-a", "workers"), nil).is(t, 200, "")
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	post(t, base, "pre-reboot", zincatiBody("host-a", "workers"), nil).is(t, 423, KindTooSoon, "the next may start at 2026-11-26T04:00:00Z")
	post(t, base, "pre-reboot", zincatiBody("host-b", "workers"), nil).is(t, 200, "")
	post(t, base, "steady-state", zincatiBody("host-b", "workers"), nil).is(t, 200, "")
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	post(t, base, "pre-reboot", zincatiBody("host-a", "workers"), nil).is(t, 200, "")

	// A reboot a node of the same name finished through rebootmgr's daemon is another
	// machine's: it does not hold the host back (nor does the host's hold the node back).
	st := &store.Consul{Client: c, Keys: keys, Group: "workers"}
	if _, err := st.AppendHistory(t.Context(), history.Entry{Node: "host-c", Start: now.Add(-time.Minute), End: now, Outcome: history.Finished, TriggeredBy: "key reboot_required"}); err != nil {
		t.Fatal(err)
	}
	post(t, base, "steady-state", zincatiBody("host-a", "workers"), nil).is(t, 200, "")
	post(t, base, "pre-reboot", zincatiBody("host-c", "workers"), nil).is(t, 200, "")
	l := historyOf(t, c, "workers")
	if _, ok := place.LastReboot(l, "host-a"); ok {
		t.Fatalf("a FleetLock host's reboot counted as a node's: %+v", l.Entries)
	}
}
