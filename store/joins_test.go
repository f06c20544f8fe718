package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// counting counts the requests made through it.
type counting struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// TestJoinsAtOnce: nodes asked at once that find the lock full all join the group's queue with
// a read and a write each, whatever their number: each writes its own ask, and none races
// another on the queue's record (written with check-and-set, each join would read and write the
// record again after every other's, some N²/2 requests). Twenty stores, each with a client of
// its own, on a real agent; then a place given back folds their asks into the record, and the
// queue reads as before.
func TestJoinsAtOnce(t *testing.T) {
	a := consultest.Dev(t, "n1")
	keys := store.Keys{Prefix: store.DefaultPrefix}
	now := time.Now()
	rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "x9", Phase: lock.Rebooting, Since: now, Updated: now}, 1)
	data, _ := rec.Encode()
	if _, err := a.Client.KV().Put(&api.KVPair{Key: keys.Lock(), Value: data}, nil); err != nil {
		t.Fatal(err)
	}
	const nodes = 20
	var requests atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for i := range nodes {
		client, err := api.NewClient(&api.Config{Address: a.HTTPAddr, HttpClient: &http.Client{Transport: counting{http.DefaultTransport, &requests}}})
		if err != nil {
			t.Fatal(err)
		}
		s := &store.Consul{Client: client, Keys: keys, Logger: slog.New(slog.DiscardHandler)}
		node := fmt.Sprintf("n%02d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- place.ChangeQueue(context.Background(), s, s.Logger, func(q lock.Queue) lock.Queue { return q.Join(node, time.Now()) })
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d nodes joined the queue at once with %d requests", nodes, requests.Load())
	if got := requests.Load(); got > 2*nodes+nodes/2 {
		t.Fatalf("%d nodes joined the queue at once with %d requests, want a read and a write each (a few more at most)", nodes, got)
	}
	s := &store.Consul{Client: a.Client, Keys: keys, Logger: slog.New(slog.DiscardHandler)}
	v, err := s.View(context.Background())
	if err != nil || len(v.Queue.Entries) != nodes {
		t.Fatalf("queue of %d entries (%v), want %d", len(v.Queue.Entries), err, nodes)
	}
	if _, err := s.Unlock(context.Background(), "x9", func(lock.Holder) error { return nil }); err != nil {
		t.Fatal(err)
	}
	after, err := s.View(context.Background())
	if err != nil || !after.Queue.Freed.After(v.Queue.Freed) {
		t.Fatalf("queue after the place was given back: %+v, %v", after.Queue, err)
	}
	after.Queue.Freed = v.Queue.Freed
	if !after.Queue.Equal(v.Queue) {
		t.Fatalf("the place given back changed the queue: %+v, was %+v", after.Queue.Entries, v.Queue.Entries)
	}
	pair, _, err := a.Client.KV().Get(keys.GroupQueue(""), nil)
	if err != nil || pair == nil {
		t.Fatalf("no queue record once a place was given back: %v", err)
	}
	if q, err := lock.DecodeQueue(pair.Value); err != nil || len(q.Entries) == 0 {
		t.Fatalf("the queue record once a place was given back: %+v, %v", q, err)
	}
}
