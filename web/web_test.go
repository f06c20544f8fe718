package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/web"
)

// live is a live view of the fleet of a real Consul agent, served for the test.
type live struct {
	agent *consultest.Agent
	store *store.Consul
	url   string
}

// serve starts the live view of agent's fleet.
func serve(t testing.TB, agent *consultest.Agent) *live {
	t.Helper()
	st := &store.Consul{Client: agent.Client, Keys: store.Keys{Prefix: store.DefaultPrefix}, Group: lock.DefaultGroup, Logger: slog.New(slog.DiscardHandler)}
	reader := fleet.Reader{Source: st, FileExists: func(string) bool { return false }, Now: time.Now}
	srv := &web.Server{Read: reader.Read, Watch: st.FleetChanges, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("the view ended: %v", err)
		}
	})
	return &live{agent: agent, store: st, url: hs.URL}
}

// Hold writes a lock record of the default group in which node holds a place in phase.
func Hold(t testing.TB, agent *consultest.Agent, node string, phase lock.Phase, since time.Time) {
	t.Helper()
	rec, err := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: node, Phase: phase, Since: since, RebootStarted: since}, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := rec.Encode()
	if _, err := agent.Client.KV().Put(&api.KVPair{Key: store.Keys{Prefix: store.DefaultPrefix}.Lock(), Value: data}, nil); err != nil {
		t.Fatal(err)
	}
}

// stream is the view's event stream, as a browser reads it.
type stream struct {
	updates <-chan update
	stop    func()
}

// update is an update of the stream, with the id of its event, its size on the wire and when it
// came.
type update struct {
	web.Update
	id      string
	bytes   int
	arrived time.Time
}

// updates reads the view's event stream; lastID, if not "", is the id of the last event the
// browser received (a reconnection).
func updates(t testing.TB, url, lastID string) stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		cancel()
		t.Fatalf("content type %q", ct)
	}
	out := make(chan update, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var u update
		for sc.Scan() {
			line := sc.Text()
			u.bytes += len(line) + 1
			switch {
			case strings.HasPrefix(line, "id: "):
				u.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[len("data: "):]), &u.Update); err != nil {
					t.Errorf("an update that is not JSON: %v", err)
				}
			case line == "" && u.id != "":
				u.bytes++
				u.arrived = time.Now()
				out <- u
				u = update{}
			case line == "":
				u = update{} // a heartbeat
			}
		}
	}()
	return stream{updates: out, stop: cancel}
}

// next is the stream's next update, within a second.
func (s stream) next(t testing.TB) update {
	t.Helper()
	select {
	case u, ok := <-s.updates:
		if !ok {
			t.Fatal("the stream ended")
		}
		return u
	case <-time.After(time.Second):
		t.Fatal("no update within a second")
	}
	return update{}
}

// TestPushesChanges: the view pushes an update when Consul changes, read by a blocking query,
// not at a poll: a node taking a place shows with its phase, in its group's holders, on the
// timeline.
func TestPushesChanges(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	v := serve(t, agent)
	s := updates(t, v.url, "")
	defer s.stop()
	first := s.next(t)
	if !first.Full || !strings.Contains(first.Fleet, `id="node-n1"`) || !strings.Contains(first.Fleet, `data-phase="-"`) {
		t.Fatalf("first update is not the whole state with n1 without a place: %+v", first.Update)
	}
	Hold(t, agent, "n1", lock.Preparing, time.Now())
	for {
		u := s.next(t)
		if strings.Contains(u.Rows["node"]["n1"], `data-node="n1" data-group="default" data-phase="preparing"`) {
			if !strings.Contains(u.Rows["tl"]["n1"], `class="phase-preparing"`) || !strings.Contains(u.Rows["group"]["default"], "n1 preparing") {
				t.Fatalf("the timeline or the group does not show n1 preparing: %+v", u.Update)
			}
			return
		}
	}
}

// TestReadOnly: the view answers GET and HEAD only.
func TestReadOnly(t *testing.T) {
	v := serve(t, consultest.Dev(t, "n1"))
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, v.url+"/", strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s: %s", m, resp.Status)
		}
	}
	resp, err := http.Get(v.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// register puts nodes in agent's catalog, as their agents would.
func register(t testing.TB, agent *consultest.Agent, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		if _, err := agent.Client.Catalog().Register(&api.CatalogRegistration{Node: n, Address: "127.0.0.2"}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWebSendsOnlyChanges: a browser that connects receives the whole state once, then each
// change as the rows it changed: a node that takes a place is its row, its group's and its row
// of the timeline, not the other nodes'. One that reconnects with the id of the last update it
// received gets the updates it missed, not the whole state; one whose id is of another run of
// the server, or unknown, gets the whole state.
func TestWebSendsOnlyChanges(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	var nodes []string
	for i := range 30 {
		nodes = append(nodes, fmt.Sprintf("node-%02d", i))
	}
	register(t, agent, nodes...)
	v := serve(t, agent)
	s := updates(t, v.url, "")
	first := s.next(t)
	for !first.Full || !strings.Contains(first.Fleet, `id="node-node-29"`) {
		first = s.next(t)
	}
	s.stop()
	missed := updates(t, v.url, first.id)
	defer missed.stop()
	Hold(t, agent, "node-07", lock.Preparing, time.Now())
	u := missed.next(t)
	for u.Rows["node"]["node-07"] == "" {
		u = missed.next(t)
	}
	if got := keys(u.Rows); u.Full || u.Fleet != "" || !slices.Equal(got["node"], []string{"node-07"}) || !slices.Equal(got["group"], []string{"default"}) || !slices.Equal(got["tl"], []string{"node-07"}) {
		t.Fatalf("a node taking a place sent full %v, rows %v", u.Full, got)
	}
	t.Logf("the whole state: %d bytes; a node taking a place: %d bytes", first.bytes, u.bytes)

	again := updates(t, v.url, first.id)
	defer again.stop()
	for r := again.next(t); r.id != u.id; r = again.next(t) {
		if r.Full {
			t.Fatalf("a browser that reconnects with the id of an update it received gets the whole state: %s", r.id)
		}
	}
	for _, id := range []string{"", "another-run.1", "garbage"} {
		other := updates(t, v.url, id)
		if r := other.next(t); !r.Full || !strings.Contains(r.Fleet, `data-node="node-07" data-group="default" data-phase="preparing"`) {
			t.Fatalf("a browser that connects with id %q does not get the whole state first: %+v", id, r.Update)
		}
		other.stop()
	}
}

// keys are the names of the rows of each section.
func keys(rows map[string]map[string]string) map[string][]string {
	out := map[string][]string{}
	for section, r := range rows {
		for id := range r {
			out[section] = append(out[section], id)
		}
		slices.Sort(out[section])
	}
	return out
}
