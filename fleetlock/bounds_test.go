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
