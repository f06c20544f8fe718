package store

import (
	"context"
	"testing"
)

// TestRememberSelf: a node remembers itself as a member of the services it runs, once; again
// when it was forgotten meanwhile; and a key already there (written by another reader) is left
// as it is.
func TestRememberSelf(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	index := func(service string) uint64 {
		t.Helper()
		pair, _, err := s.Client.KV().Get(s.Keys.Member(service, "n1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if pair == nil {
			return 0
		}
		return pair.ModifyIndex
	}
	if err := s.Remember(ctx, "web", []string{"n1", "n2"}); err != nil {
		t.Fatal(err)
	}
	web := index("web")
	operator := &Consul{Client: s.Client, Keys: s.Keys}
	for _, step := range []struct {
		what string
		// before is done first; services are what the node runs.
		before   func() error
		services []string
		// written: the services whose key is written by this step; kept, those left as they were.
		written, kept []string
	}{
		{"its first start", nil, []string{"cassandra", "web"}, []string{"cassandra"}, []string{"web"}},
		{"read again", nil, []string{"cassandra", "web"}, nil, []string{"cassandra", "web"}},
		{"forgotten from cassandra while out of the catalog", func() error {
			_, err := operator.Forget(ctx, "n1", "cassandra")
			return err
		}, []string{"cassandra", "web"}, []string{"cassandra"}, []string{"web"}},
		{"runs nothing", nil, nil, nil, []string{"cassandra", "web"}},
	} {
		if step.before != nil {
			if err := step.before(); err != nil {
				t.Fatalf("%s: %v", step.what, err)
			}
		}
		was := map[string]uint64{"cassandra": index("cassandra"), "web": index("web")}
		if err := s.RememberSelf(ctx, "n1", step.services); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		for _, svc := range step.written {
			if now := index(svc); now == 0 || now == was[svc] {
				t.Fatalf("%s: %s not written (index %d, was %d)", step.what, svc, now, was[svc])
			}
		}
		for _, svc := range step.kept {
			if now := index(svc); now != was[svc] {
				t.Fatalf("%s: %s written again (index %d, was %d)", step.what, svc, now, was[svc])
			}
		}
	}
	if index("web") != web {
		t.Fatal("the key another reader wrote was written again")
	}
	if err := s.RememberSelf(ctx, "n1", []string{"bad/name"}); err == nil {
		t.Fatal("a service name that cannot be a key's segment was taken")
	}
}
