package store

import (
	"context"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// take gives node a place in s's group, as the pipeline's acquire does; false on a conflict.
func take(t *testing.T, s *Consul, node string) bool {
	t.Helper()
	ctx := context.Background()
	v, err := s.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := v.Lock.Acquire(lock.Holder{Node: node, Phase: lock.Preparing}, v.Limit.Places(v.GroupNodes, true))
	if err != nil {
		t.Fatal(err)
	}
	fleet := v.Fleet.With(node, v.Group)
	ok, err := s.Commit(ctx, v, place.Change{Lock: rec, Fleet: &fleet})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// give gives node's place back, as the pipeline's release does.
func give(t *testing.T, s *Consul, node string) {
	t.Helper()
	ctx := context.Background()
	v, err := s.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fleet := v.Fleet.Without(node, v.Group)
	if ok, err := s.Commit(ctx, v, place.Change{Lock: v.Lock.Release(node), Fleet: &fleet}); !ok || err != nil {
		t.Fatalf("release %s: %v %v", node, ok, err)
	}
}

// TestMarkersFollowTheHolders: with PythonMarkers, the Python rebootmgr's markers (fleet-wide
// and the group's) name rebootmgr's holders while there are any, change with them in the same
// transaction, and go with the last; rebootmgr does not read them back as Python holders.
// Without PythonMarkers none is written, but one left is kept up to date and deleted with the
// last holder. A marker the Python rebootmgr wrote is never touched.
func TestMarkersFollowTheHolders(t *testing.T) {
	const (
		fleetMarker   = DefaultPrefix + "/reboot_in_progress"
		defaultMarker = DefaultPrefix + "/default_reboot_in_progress"
		computeMarker = DefaultPrefix + "/compute_reboot_in_progress"
	)
	type step struct {
		group, node string
		take        bool
		markers     bool
		// want are the markers after the step ("" : absent).
		want map[string]string
	}
	tests := []struct {
		name    string
		limit   string
		python  map[string]string // markers the Python rebootmgr wrote before
		steps   []step
		legacy  int // Python holders the last View sees
		noWrite []string
	}{
		{name: "default group", steps: []step{
			{"", "n1", true, true, map[string]string{fleetMarker: "[rebootmgr] n1", defaultMarker: "[rebootmgr] n1"}},
			{"", "n1", false, true, map[string]string{fleetMarker: "", defaultMarker: ""}},
		}},
		{name: "limit 2: the last one out deletes", limit: "2", steps: []step{
			{"compute", "c1", true, true, map[string]string{fleetMarker: "[rebootmgr] c1", computeMarker: "[rebootmgr] c1", defaultMarker: ""}},
			{"compute", "c2", true, true, map[string]string{fleetMarker: "[rebootmgr] c1 c2", computeMarker: "[rebootmgr] c1 c2"}},
			{"compute", "c1", false, true, map[string]string{fleetMarker: "[rebootmgr] c2", computeMarker: "[rebootmgr] c2"}},
			{"compute", "c2", false, true, map[string]string{fleetMarker: "", computeMarker: ""}},
		}},
		{name: "two groups share the fleet-wide marker", steps: []step{
			{"compute", "c1", true, true, map[string]string{fleetMarker: "[rebootmgr] c1", computeMarker: "[rebootmgr] c1"}},
			{"", "n1", true, true, map[string]string{fleetMarker: "[rebootmgr] c1 n1", computeMarker: "[rebootmgr] c1", defaultMarker: "[rebootmgr] n1"}},
			{"compute", "c1", false, true, map[string]string{fleetMarker: "[rebootmgr] n1", computeMarker: "", defaultMarker: "[rebootmgr] n1"}},
			{"", "n1", false, true, map[string]string{fleetMarker: "", defaultMarker: ""}},
		}},
		{name: "turned off: none written, one left kept and deleted with the last", limit: "2", steps: []step{
			{"compute", "c1", true, false, map[string]string{fleetMarker: "", computeMarker: ""}},
			{"compute", "c1", false, false, nil},
			{"compute", "c1", true, true, map[string]string{fleetMarker: "[rebootmgr] c1", computeMarker: "[rebootmgr] c1"}},
			{"compute", "c2", true, false, map[string]string{fleetMarker: "[rebootmgr] c1 c2", computeMarker: "[rebootmgr] c1 c2"}},
			{"compute", "c1", false, false, map[string]string{fleetMarker: "[rebootmgr] c2", computeMarker: "[rebootmgr] c2"}},
			{"compute", "c2", false, false, map[string]string{fleetMarker: "", computeMarker: ""}},
		}},
		{name: "the Python rebootmgr's marker of another group is its own", python: map[string]string{DefaultPrefix + "/ceph_reboot_in_progress": "osd-3"}, steps: []step{
			{"compute", "c1", true, true, map[string]string{fleetMarker: "[rebootmgr] c1", DefaultPrefix + "/ceph_reboot_in_progress": "osd-3"}},
			{"compute", "c1", false, true, map[string]string{fleetMarker: "", DefaultPrefix + "/ceph_reboot_in_progress": "osd-3"}},
		}},
		// An operator's unlock of a holder (here: a release) while a Python node's marker is
		// there leaves it as it is.
		{name: "a release leaves a Python marker", python: map[string]string{computeMarker: "py-7"}, steps: []step{
			{"compute", "c1", false, true, map[string]string{computeMarker: "py-7", fleetMarker: ""}},
		}, legacy: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, a := newStore(t)
			kv := a.Client.KV()
			if tt.limit != "" {
				kv.Put(&api.KVPair{Key: s.Keys.GroupLimit("compute"), Value: []byte(tt.limit)}, nil)
			}
			for key, value := range tt.python {
				kv.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil)
			}
			for i, st := range tt.steps {
				g := &Consul{Client: s.Client, Keys: s.Keys, Group: st.group, PythonMarkers: st.markers, Logger: s.Logger}
				if st.take {
					if !take(t, g, st.node) {
						t.Fatalf("step %d: %s could not take a place", i, st.node)
					}
				} else {
					give(t, g, st.node)
				}
				for key, want := range st.want {
					p, _, err := kv.Get(key, nil)
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case want == "" && p != nil:
						t.Fatalf("step %d: %s = %q, want it absent", i, key, p.Value)
					case want != "" && (p == nil || string(p.Value) != want):
						t.Fatalf("step %d: %s = %v, want %q", i, key, p, want)
					case p != nil && p.Flags != 0:
						t.Fatalf("step %d: %s has flags %d", i, key, p.Flags)
					}
				}
				v, err := g.View(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if i < len(tt.steps)-1 && len(v.Legacy) != 0 {
					t.Fatalf("step %d: rebootmgr's own markers read back as Python holders: %v", i, v.Legacy)
				}
				if i == len(tt.steps)-1 && len(v.Legacy) != tt.legacy {
					t.Fatalf("Python holders %v, want %d", v.Legacy, tt.legacy)
				}
			}
		})
	}
}

// TestPythonLockAfterTheView: a Python node that takes its session lock (or writes its marker)
// after the View was read makes a Commit with PythonMarkers write nothing, whether its key
// existed before or not; without PythonMarkers the Commit does not look.
func TestPythonLockAfterTheView(t *testing.T) {
	tests := []struct {
		name    string
		group   string
		before  func(t *testing.T, kv *api.KV, session string) // what was there when the View was read
		meddle  func(t *testing.T, kv *api.KV, session string) // what the Python node does after
		markers bool
		want    bool
	}{
		{name: "fleet-wide session lock, key absent before", markers: true,
			meddle: acquire(DefaultPrefix + "/lock/.lock")},
		{name: "fleet-wide session lock, released before", markers: true,
			before: func(t *testing.T, kv *api.KV, session string) {
				acquire(DefaultPrefix+"/lock/.lock")(t, kv, session)
				release(DefaultPrefix+"/lock/.lock")(t, kv, session)
			},
			meddle: acquire(DefaultPrefix + "/lock/.lock")},
		{name: "the group's session lock", group: "compute", markers: true,
			meddle: acquire(DefaultPrefix + "/compute_lock/.lock")},
		{name: "the default group's session lock", markers: true,
			meddle: acquire(DefaultPrefix + "/default_lock/.lock")},
		{name: "the group's marker", group: "compute", markers: true,
			meddle: func(t *testing.T, kv *api.KV, _ string) {
				kv.Put(&api.KVPair{Key: DefaultPrefix + "/compute_reboot_in_progress", Value: []byte("py-1")}, nil)
			}},
		{name: "another group's session lock", group: "compute", markers: true, want: true,
			meddle: acquire(DefaultPrefix + "/ceph_lock/.lock")},
		{name: "turned off", markers: false, want: true,
			meddle: acquire(DefaultPrefix + "/lock/.lock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, a := newStore(t)
			s.Group, s.PythonMarkers = tt.group, tt.markers
			kv := a.Client.KV()
			session, _, err := a.Client.Session().Create(&api.SessionEntry{TTL: "600s"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				tt.before(t, kv, session)
			}
			ctx := context.Background()
			v, err := s.View(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tt.meddle(t, kv, session)
			rec, _ := v.Lock.Acquire(lock.Holder{Node: "n1", Phase: lock.Preparing}, v.Limit.Places(v.GroupNodes, true))
			fleet := v.Fleet.With("n1", v.Group)
			ok, err := s.Commit(ctx, v, place.Change{Lock: rec, Fleet: &fleet})
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Fatalf("commit = %v, want %v", ok, tt.want)
			}
			if p, _, _ := kv.Get(s.Keys.GroupLock(tt.group), nil); (p != nil) != tt.want {
				t.Fatalf("lock record written: %v, want %v", p != nil, tt.want)
			}
			if p, _, _ := kv.Get(s.Keys.LegacyMarker(), nil); (p != nil) != (tt.want && tt.markers) {
				t.Fatalf("marker written: %v", p)
			}
		})
	}
}

func acquire(key string) func(t *testing.T, kv *api.KV, session string) {
	return func(t *testing.T, kv *api.KV, session string) {
		t.Helper()
		if ok, _, err := kv.Acquire(&api.KVPair{Key: key, Value: []byte(`{"state": "done"}`), Session: session}, nil); !ok || err != nil {
			t.Fatalf("acquire %s: %v %v", key, ok, err)
		}
	}
}

func release(key string) func(t *testing.T, kv *api.KV, session string) {
	return func(t *testing.T, kv *api.KV, session string) {
		t.Helper()
		if ok, _, err := kv.Release(&api.KVPair{Key: key, Session: session}, nil); !ok || err != nil {
			t.Fatalf("release %s: %v %v", key, ok, err)
		}
	}
}
