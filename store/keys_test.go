package store

import (
	"testing"
)

// TestKeysParseWhatTheyBuild: every key the layout builds is read back into what it was built
// from, under rebootmgr's prefix and under none (the in-memory store's layout); keys it never
// builds are no key of its.
func TestKeysParseWhatTheyBuild(t *testing.T) {
	built := []Key{
		{Kind: KindStop}, {Kind: KindHolders}, {Kind: KindClaims},
		{Kind: KindLock, Group: DefaultGroup}, {Kind: KindLock, Group: "compute"}, {Kind: KindLock, Group: "groups"},
		{Kind: KindGroupStop, Group: DefaultGroup}, {Kind: KindGroupStop, Group: "compute"},
		{Kind: KindLimit, Group: "compute"}, {Kind: KindQueue, Group: "compute"}, {Kind: KindHistory, Group: DefaultGroup},
		{Kind: KindTurn, Group: "compute", Node: "n1"}, {Kind: KindTurn, Group: DefaultGroup, Node: "host-a"},
		{Kind: KindAsk, Group: "compute", Node: "n1"}, {Kind: KindAsk, Group: DefaultGroup, Node: "x/../y"},
		{Kind: KindDisabled, Node: "n1"}, {Kind: KindDisabled, Node: "groups"}, {Kind: KindDisabled, Node: "lock"},
		{Kind: KindRebootRequired, Node: "web-1.example.com"}, {Kind: KindRebootRequired, Node: "members"},
		{Kind: KindMember, Service: "galera", Node: "db-1"},
		{Kind: KindMember, Service: "galera", Node: "x/../y"}, {Kind: KindMember, Service: "galera", Node: "a node"},
		{Kind: KindPythonConfig, Node: "py-1"},
		{Kind: KindPythonStop, Group: DefaultGroup}, {Kind: KindPythonStop, Group: "compute"},
		{Kind: KindPythonSession}, {Kind: KindPythonSession, Group: DefaultGroup}, {Kind: KindPythonSession, Group: "compute"},
		{Kind: KindPythonMarker}, {Kind: KindPythonMarker, Group: DefaultGroup}, {Kind: KindPythonMarker, Group: "compute"},
	}
	for _, prefix := range []string{DefaultPrefix, "rebootmgr", ""} {
		keys := Keys{Prefix: prefix}
		for _, want := range built {
			key := keys.Of(want)
			got, ok := keys.Parse(key)
			if !ok || got != want {
				t.Errorf("prefix %q: Parse(%q) = %+v, %v; want %+v", prefix, key, got, ok, want)
			}
		}
	}
	keys := Keys{Prefix: DefaultPrefix}
	for _, key := range []string{
		"", DefaultPrefix, DefaultPrefix + "/", "service/other/stop", "service/rebootmgrx/stop",
		// The default group's lock is Lock: groups/default/lock is no key of rebootmgr's.
		DefaultPrefix + "/groups/default/lock",
		DefaultPrefix + "/groups/compute/unknown", DefaultPrefix + "/groups//stop", DefaultPrefix + "/groups/compute/turn/",
		DefaultPrefix + "/n1/other", DefaultPrefix + "//disabled", DefaultPrefix + "/n1/disabled/x",
		DefaultPrefix + "/_stop", DefaultPrefix + "/_reboot_in_progress", DefaultPrefix + "/_lock/.lock", DefaultPrefix + "/x/.lock",
		DefaultPrefix + "/members/galera", DefaultPrefix + "/members/galera/", DefaultPrefix + "/members/galera/a%ZZ",
		// A member's node written otherwise than Member writes it.
		DefaultPrefix + "/members/galera/db%2D1", DefaultPrefix + "/groups/compute/asks/n%2D1", DefaultPrefix + "/groups/compute/asks/",
		DefaultPrefix + "/nodes/py-1/other", DefaultPrefix + "/nodes/py-1",
	} {
		if got, ok := keys.Parse(key); ok {
			t.Errorf("Parse(%q) = %+v, want no key of rebootmgr's", key, got)
		}
	}
}

// TestKeysLayout: the layout as rebootmgr 0.1.0 and the Python rebootmgr know it; without a
// prefix, the same keys from the root.
func TestKeysLayout(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Keys{Prefix: DefaultPrefix}.Stop(), "service/rebootmgr/stop"},
		{Keys{Prefix: DefaultPrefix}.GroupLock("compute"), "service/rebootmgr/groups/compute/lock"},
		{Keys{Prefix: DefaultPrefix}.GroupLock(""), "service/rebootmgr/lock"},
		{Keys{Prefix: DefaultPrefix}.GroupTurn("", "n1"), "service/rebootmgr/groups/default/turn/n1"},
		{Keys{Prefix: DefaultPrefix}.Member("galera", "a b"), "service/rebootmgr/members/galera/a%20b"},
		{Keys{Prefix: DefaultPrefix}.GroupAsk("compute", "n1"), "service/rebootmgr/groups/compute/asks/n1"},
		{Keys{}.GroupAsk("", "a.b c"), "groups/default/asks/a%2Eb%20c"},
		{Keys{Prefix: DefaultPrefix}.LegacyGroupSession("compute"), "service/rebootmgr/compute_lock/.lock"},
		{Keys{}.Stop(), "stop"},
		{Keys{}.GroupQueue("default"), "groups/default/queue"},
		{Keys{}.Disabled("n1"), "n1/disabled"},
		{Keys{}.Holders(), "holders"},
		{Keys{}.LegacyGroupMarker("ctl"), "ctl_reboot_in_progress"},
	} {
		if tt.got != tt.want {
			t.Errorf("key %q, want %q", tt.got, tt.want)
		}
	}
}
