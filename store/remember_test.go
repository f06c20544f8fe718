package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestRememberManyAtOnce: daemons that first read a service of many instances before its
// members have remembered themselves (a fleet that starts, or is asked to reboot, all at once)
// write the members they do not know in a request for every 64 of them, not one each; racing
// one another, every member is written once and a key already there is left as it was.
func TestRememberManyAtOnce(t *testing.T) {
	a := consultest.Dev(t, "n1")
	keys := store.Keys{Prefix: store.DefaultPrefix}
	const service, members = "cassandra", 200
	nodes := make([]string, members)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("n%03d", i)
	}
	// One member remembered itself already: its key is never written again.
	kept := keys.Member(service, "n077")
	if _, err := a.Client.KV().Put(&api.KVPair{Key: kept, Value: []byte("first seen long ago")}, nil); err != nil {
		t.Fatal(err)
	}
	was, _, err := a.Client.KV().Get(kept, nil)
	if err != nil || was == nil {
		t.Fatalf("read %s: %v", kept, err)
	}
	for _, tc := range []struct {
		stores int
		// most is the most requests all stores may make: a read of the members and a
		// transaction for every 64 members each, and each transaction again once for what
		// another wrote meanwhile.
		most int
	}{
		{stores: 1, most: 1 + 4},
		{stores: 10, most: 10 * (1 + 2*4)},
	} {
		t.Run(fmt.Sprintf("%d stores", tc.stores), func(t *testing.T) {
			if _, err := a.Client.KV().DeleteTree(keys.MembersPrefix(), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Client.KV().Put(&api.KVPair{Key: kept, Value: was.Value}, nil); err != nil {
				t.Fatal(err)
			}
			before, _, err := a.Client.KV().Get(kept, nil)
			if err != nil || before == nil {
				t.Fatalf("read %s: %v", kept, err)
			}
			var requests atomic.Int64
			start := make(chan struct{})
			errs := make(chan error, tc.stores)
			var wg sync.WaitGroup
			for range tc.stores {
				client, err := api.NewClient(&api.Config{Address: a.HTTPAddr, HttpClient: &http.Client{Transport: counting{http.DefaultTransport, &requests}}})
				if err != nil {
					t.Fatal(err)
				}
				s := &store.Consul{Client: client, Keys: keys, Logger: slog.New(slog.DiscardHandler)}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs <- s.Remember(context.Background(), service, nodes)
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
			t.Logf("%d stores remembered %d members with %d requests", tc.stores, members, requests.Load())
			if got := requests.Load(); got > int64(tc.most) {
				t.Fatalf("%d stores remembered %d members with %d requests, want %d at most", tc.stores, members, got, tc.most)
			}
			got, _, err := a.Client.KV().Keys(keys.MembersPrefix()+service+"/", "", nil)
			if err != nil || len(got) != members {
				t.Fatalf("%d members' keys after remembering %d: %v", len(got), members, err)
			}
			after, _, err := a.Client.KV().Get(kept, nil)
			if err != nil || after == nil || after.ModifyIndex != before.ModifyIndex || string(after.Value) != string(before.Value) {
				t.Fatalf("the key of a member already remembered was written again: %+v (was %+v)", after, before)
			}
		})
	}
}
