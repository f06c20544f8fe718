package watch

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// counting counts the requests that reach Consul.
type counting struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// TestPauseHoldsAWatch: a watch held from its start makes its first query and asks Consul
// nothing more however often the key changes, until the pause is lifted; then it asks with the
// index it saw last, so that the changes made meanwhile are one event at once. Held again, the
// query in flight returns at the next change, and no other is asked.
func TestPauseHoldsAWatch(t *testing.T) {
	a := consultest.Dev(t, "n1")
	requests := &counting{next: http.DefaultTransport}
	client, err := api.NewClient(&api.Config{Address: a.HTTPAddr, HttpClient: &http.Client{Transport: requests}})
	if err != nil {
		t.Fatal(err)
	}
	put := func(v string) {
		t.Helper()
		if _, err := a.Client.KV().Put(&api.KVPair{Key: "k", Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	pause := NewPause(true)
	events := NewEvents()
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = KeySource{KV: client.KV(), Key: "k", Source: SourceTurn, Logger: slog.New(slog.DiscardHandler), Pause: pause}.Run(ctx, events, func() { close(ready) })
	}()
	defer func() { cancel(); <-done }()
	next := func(what string) {
		t.Helper()
		select {
		case <-events.Wake():
			if evs := events.Take(); len(evs) != 1 || evs[0].Source != SourceTurn {
				t.Fatalf("%s: events %+v", what, evs)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no event", what)
		}
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not yet, after 30s", what)
			}
		}
	}
	asked := func(want int64) func() bool { return func() bool { return requests.n.Load() == want } }
	held := func() bool { return pause.waitingNow() == 1 }

	<-ready
	until("held after its start", held)
	put("1")
	put("2")
	if n := requests.n.Load(); n != 1 || !held() {
		t.Fatalf("%d requests while held (held: %v), want only the start", n, held())
	}
	pause.Set(false)
	next("the changes made while held, once lifted")
	until("the watch asking again", asked(3))
	put("3")
	next("a change while not held")
	until("the watch asking again", asked(4))
	pause.Set(true)
	put("4")
	next("the query in flight, once held again")
	until("held again", held)
	put("5")
	if n := requests.n.Load(); n != 4 || !held() {
		t.Fatalf("%d requests (held: %v), want 4: the start, the one lifted, and two that returned", n, held())
	}
}
