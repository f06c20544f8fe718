package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// frames reads the frames of the view's event stream.
func frames(t testing.TB, url string) (<-chan web.Frame, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		cancel()
		t.Fatalf("content type %q", ct)
	}
	out := make(chan web.Frame, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var f web.Frame
			if json.Unmarshal([]byte(data), &f) == nil {
				out <- f
			}
		}
	}()
	return out, cancel
}

// TestPushesChanges: the view pushes a new frame when Consul changes, read by a blocking
// query, not at a poll: a node taking a place shows with its phase, in its group's holders, on
// the timeline.
func TestPushesChanges(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	v := serve(t, agent)
	ch, stop := frames(t, v.url)
	defer stop()
	first := <-ch
	if !strings.Contains(first.Fleet, `id="node-n1"`) || !strings.Contains(first.Fleet, `data-phase="-"`) {
		t.Fatalf("first frame does not show n1 without a place:\n%s", first.Fleet)
	}
	written := time.Now()
	Hold(t, agent, "n1", lock.Preparing, written)
	deadline := time.After(time.Second)
	for {
		select {
		case f := <-ch:
			if strings.Contains(f.Fleet, `data-node="n1" data-group="default" data-phase="preparing"`) {
				if !strings.Contains(f.Timeline, `class="phase-preparing"`) || !strings.Contains(f.Timeline, `data-node="n1"`) {
					t.Fatalf("the timeline does not draw n1 preparing:\n%s", f.Timeline)
				}
				return
			}
		case <-deadline:
			t.Fatal("n1's place not shown within a second of its write")
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
