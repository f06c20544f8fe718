package fleetlock

import (
	"fmt"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// TestFleetLockUnknownGroup: a pre-reboot in a group no operator made is refused (400
// unknown_group) and writes nothing, however many such groups are asked for: no flood of
// fresh groups fills the fleet's record of holders. A group made by its limit, by a node of
// the catalog in it, or by any key of it (its stop flag) is served.
func TestFleetLockUnknownGroup(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	base := serve(t, c, nil)
	before := agent.KVState()
	for i := range 700 {
		group := fmt.Sprintf("fresh-%d", i)
		post(t, base, "pre-reboot", zincatiBody(fmt.Sprintf("host-%d", i), group), nil).is(t, 400, KindUnknownGroup, group, "rebootmgr limit "+group)
	}
	// A steady-state from a host that holds nothing is still 200: Zincati asks after every boot.
	post(t, base, "steady-state", zincatiBody("host-0", "fresh-0"), nil).is(t, 200, "")
	if after := agent.KVState(); after != before {
		t.Fatalf("written for groups nobody made:\n%s\n%s", before, after)
	}

	put(t, c, keys.GroupLimit("workers"), "2")
	put(t, c, keys.GroupStop("paused"), "not yet")
	if _, err := c.Catalog().Register(&api.CatalogRegistration{Node: "edge-1", Address: "127.0.0.2", NodeMeta: map[string]string{"rebootmgr-group": "edge"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		group  string
		status int
		kind   string
	}{
		{"default", 200, ""},
		{"workers", 200, ""},
		{"edge", 200, ""},
		{"paused", 423, KindStopped},
	} {
		post(t, base, "pre-reboot", zincatiBody("h-"+tt.group, tt.group), nil).is(t, tt.status, tt.kind)
	}
	if f := fleetOf(t, c); len(f.Holders) != 3 {
		t.Fatalf("fleet's holders: %+v", f.Holders)
	}
}

// TestFleetLockSquat: a client with group a's token cannot take, under the id of group b's host,
// a place while that host waits in b's queue or holds a place in b, and the host is told which
// group holds its id (id_in_use) rather than waiting on a lock forever; a host whose Consul
// node names its group asks in that group only. Ids are first come: one that neither holds nor
// waits may be taken in a, and b's host is then refused naming a.
func TestFleetLockSquat(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	c := agent.Client
	tokens := Tokens{"a": "token-a", "b": "token-b"}
	base := serve(t, c, tokens)
	put(t, c, keys.GroupLimit("a"), "1")
	put(t, c, keys.GroupLimit("b"), "1")
	as := func(group string) map[string]*string {
		return map[string]*string{"Authorization": ptr("Bearer token-" + group)}
	}
	post(t, base, "pre-reboot", zincatiBody("b-holder", "b"), as("b")).is(t, 200, "")
	// b's host waits in b's queue.
	post(t, base, "pre-reboot", zincatiBody("host-x", "b"), as("b")).is(t, 423, KindLockHeld)
	post(t, base, "pre-reboot", zincatiBody("host-x", "a"), as("a")).is(t, 409, KindIDInUse, "host-x waits in the queue of group b")
	post(t, base, "steady-state", zincatiBody("b-holder", "b"), as("b")).is(t, 200, "")
	post(t, base, "pre-reboot", zincatiBody("host-x", "b"), as("b")).is(t, 200, "")
	// b's host holds its place in b.
	post(t, base, "pre-reboot", zincatiBody("host-x", "a"), as("a")).is(t, 409, KindIDInUse, "host-x holds a place in group b")
	if h, ok := lockOf(t, c, "a").Holder("host-x"); ok {
		t.Fatalf("squatted in a: %+v", h)
	}
	post(t, base, "steady-state", zincatiBody("host-x", "b"), as("b")).is(t, 200, "")

	// First come: an id that neither holds nor waits is taken in a; b's host is then told so.
	post(t, base, "pre-reboot", zincatiBody("host-x", "a"), as("a")).is(t, 200, "")
	post(t, base, "pre-reboot", zincatiBody("host-x", "b"), as("b")).is(t, 409, KindIDInUse, "host-x holds a place in group a")

	// A host whose Consul node names its group asks in that group only.
	if _, err := c.Catalog().Register(&api.CatalogRegistration{Node: "host-y", Address: "127.0.0.2", NodeMeta: map[string]string{"rebootmgr-group": "b"}}, nil); err != nil {
		t.Fatal(err)
	}
	post(t, base, "pre-reboot", zincatiBody("host-y", "a"), as("a")).is(t, 409, KindIDInUse, "host-y is a node of group b")
	post(t, base, "pre-reboot", zincatiBody("host-y", "b"), as("b")).is(t, 200, "")
}
