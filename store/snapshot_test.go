package store

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestFleetSnapshot: the snapshot status is computed from holds every key as the key it is
// (read back by Keys.Parse), the Python rebootmgr's marks where rebootmgr's own are not set,
// and the catalog's nodes, services, daemons and maintenance; keys of no kind are left out.
func TestFleetSnapshot(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	k := s.Keys
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	rec, _ := lock.Record{Version: lock.Version, Holders: []lock.Holder{{Node: "c1", Phase: lock.Rebooting, Since: t0, Updated: t0}}}.Encode()
	queue, _ := lock.Queue{Version: lock.Version}.Join("c2", t0).Encode()
	holders, _ := lock.Fleet{}.With("c1", "compute").Encode()
	for key, value := range map[string]string{
		k.Stop(): "freeze", k.Holders(): string(holders), k.Claims(): "not a record",
		k.GroupLock("compute"): string(rec), k.GroupLimit("compute"): "2", k.GroupQueue("compute"): string(queue),
		k.GroupStop("compute"): "rebootmgr's own", k.PythonGroupStop("compute"): "the Python rebootmgr's",
		k.PythonGroupStop("ctl"): "py stop", k.GroupLimit("odd"): "many",
		k.GroupTurn("compute", "c2"): "place now", k.Prefix + "/groups/default/lock": "not rebootmgr's key",
		k.Disabled("n1"): "disk", k.PythonConfig("n1"): `{"enabled": false, "message": "python's"}`,
		k.PythonConfig("py-1"): `{"enabled": false, "message": "old", "group": "ctl"}`, k.PythonConfig("py-2"): `{"enabled": true}`,
		k.RebootRequired("n2"): "kernel", k.Member("galera", "n1"): "first seen", k.Member("galera", "a b"): "first seen",
		k.LegacyMarker(): "py-1", k.LegacyGroupMarker("compute"): MarkerValue([]string{"c1"}), k.LegacyGroupMarker("ctl"): "py-3",
		k.Prefix + "/somebody/elses/key": "x", k.Prefix + "/n9/other": "x",
	} {
		if _, err := a.Client.KV().Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	a.RegisterService("galera", []string{"rebootmgr"}, api.HealthPassing)
	a.RegisterRemote("c1", "web", []string{"rebootmgr"}, api.HealthPassing, consultest.NodeCheck{CheckID: api.NodeMaint, Status: api.HealthCritical, Notes: "swap"})
	if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "c2", Address: "127.0.0.3", NodeMeta: map[string]string{GroupMeta: "compute", ZoneMeta: "rack-1"}}, nil); err != nil {
		t.Fatal(err)
	}
	reg := Registration{Client: a.Client, Node: "n1", TTL: time.Hour, Meta: fleet.Settings{Version: "1", Enabled: true}.Meta(t0)}
	if err := reg.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reg.Publish(ctx, true, "disabled after a failed task"); err != nil {
		t.Fatal(err)
	}

	snap, err := s.FleetSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compute := snap.Groups["compute"]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"stop", *snap.Stop, fleet.Mark{Value: "freeze"}},
		{"holders", snap.Fleet.Holders, map[string]string{"c1": "compute"}},
		{"claims", strings.Contains(snap.FleetError, k.Claims()), true},
		{"groups", slices.Sorted(maps.Keys(snap.Groups)), []string{"compute", "ctl", "odd"}},
		{"compute's lock", len(compute.Lock.Holders) == 1 && compute.Lock.Holders[0].Node == "c1", true},
		{"compute's limit", compute.Limit, lock.Limit{N: 2}},
		{"compute's queue", len(compute.Queue.Entries) == 1 && compute.Queue.Entries[0].Node == "c2", true},
		{"compute's own stop", *compute.Stop, fleet.Mark{Value: "rebootmgr's own"}},
		{"compute's markers: rebootmgr's own holds nothing", len(compute.Legacy), 0},
		{"ctl's Python stop", *snap.Groups["ctl"].Stop, fleet.Mark{Value: "(the Python rebootmgr's " + k.PythonGroupStop("ctl") + ") py stop"}},
		{"ctl's Python marker", snap.Groups["ctl"].Legacy, map[string]string{k.LegacyGroupMarker("ctl"): "py-3"}},
		{"odd's limit", strings.Contains(snap.Groups["odd"].Error, k.GroupLimit("odd")), true},
		{"the Python marker of no group", snap.Legacy, map[string]string{k.LegacyMarker(): "py-1"}},
		{"n1's own mark", snap.Disabled["n1"], fleet.Mark{Value: "disk"}},
		{"py-1's Python config", strings.HasPrefix(snap.Disabled["py-1"].Value, "the Python rebootmgr's config "+k.PythonConfig("py-1")), true},
		{"py-2 enabled", slices.Contains(slices.Collect(maps.Keys(snap.Disabled)), "py-2"), false},
		{"the Python configs' groups", snap.Python, map[string]string{"n1": "", "py-1": "ctl", "py-2": ""}},
		{"requests", snap.Requests, map[string]fleet.Mark{"n2": {Value: "kernel"}}},
		{"members", slices.Sorted(slices.Values(snap.Members["galera"])), []string{"a b", "n1"}},
		{"nodes", snap.Nodes, map[string]string{"n1": "", "c1": "", "c2": "compute"}},
		{"zones", snap.Zones, map[string]string{"c2": "rack-1"}},
		{"services", len(snap.Services) == 2 && snap.Services[0].Name == "galera" && snap.Services[1].Name == "web", true},
		{"daemon", snap.Daemons["n1"].State, fleet.DaemonNeedsOperator},
		{"daemon's status", snap.Daemons["n1"].Status, "disabled after a failed task"},
		{"daemon's settings", snap.Daemons["n1"].Settings.Version, "1"},
		{"maintenance", snap.Maintenance, map[string]string{"c1": "swap"}},
	} {
		if !equal(c.got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.what, c.got, c.want)
		}
	}
	if d, ok, err := s.Daemon(ctx, "n1"); err != nil || !ok || d.State != fleet.DaemonNeedsOperator {
		t.Errorf("Daemon(n1) = %+v, %v, %v", d, ok, err)
	}
	if _, ok, err := s.Daemon(ctx, "c1"); err != nil || ok {
		t.Errorf("Daemon(c1) = %v, %v: want none", ok, err)
	}
}

// equal compares what a snapshot holds, maps included.
func equal(got, want any) bool {
	switch w := want.(type) {
	case map[string]string:
		g, ok := got.(map[string]string)
		return ok && maps.Equal(g, w)
	case map[string]fleet.Mark:
		g, ok := got.(map[string]fleet.Mark)
		return ok && maps.Equal(g, w)
	case []string:
		g, ok := got.([]string)
		return ok && slices.Equal(g, w)
	}
	return got == want
}

// TestFleetSnapshotHidden: a token that may read the keys but not every node gets an error
// that says what it lacks, never a snapshot of fewer nodes.
func TestFleetSnapshotHidden(t *testing.T) {
	a := consultest.DevACL(t, "n1")
	admin := &Consul{Client: a.Client, Keys: Keys{Prefix: DefaultPrefix}}
	policy, _, err := a.Client.ACL().PolicyCreate(&api.ACLPolicy{Name: "keys", Rules: `key_prefix "service/rebootmgr/" { policy = "read" }
node "n1" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := a.Client.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "c1", Address: "127.0.0.2"}, nil); err != nil {
		t.Fatal(err)
	}
	client, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Token: token.SecretID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.FleetSnapshot(context.Background()); err != nil {
		t.Fatalf("with the management token: %v", err)
	}
	s := &Consul{Client: client, Keys: Keys{Prefix: DefaultPrefix}}
	if _, err := s.FleetSnapshot(context.Background()); !errors.Is(err, ErrFiltered) || !strings.Contains(err.Error(), `node_prefix "" read`) {
		t.Fatalf("FleetSnapshot with nodes hidden: %v", err)
	}
}
