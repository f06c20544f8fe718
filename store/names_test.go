package store

import (
	"context"
	"path"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestValidNames(t *testing.T) {
	// badNames must never go into a key: the first ones would change the key's path, the
	// others are not names Consul or a host would use.
	badNames := []struct{ name, value, mention string }{
		{"empty", "", "empty"},
		{"dot", ".", "steps in the key path"},
		{"dot dot", "..", "steps in the key path"},
		{"up and over", "x/../n1", "only letters"},
		{"a path", "a/b", "only letters"},
		{"leading slash", "/n1", "only letters"},
		{"trailing slash", "n1/", "only letters"},
		{"space", "a b", "only letters"},
		{"newline", "n1\nn2", "only letters"},
		{"leading newline", "\nn1", "only letters"},
		{"tab", "n1\t", "only letters"},
		{"nul", "n1\x00", "only letters"},
		{"delete", "n1\x7f", "only letters"},
		{"backslash", `x\..\n1`, "only letters"},
		{"percent", "x%2F..%2Fn1", "only letters"},
		{"question mark", "n1?recurse", "only letters"},
		{"hash", "n1#x", "only letters"},
		{"not ascii", "nöde", "only letters"},
		{"emoji", "🐼", "only letters"},
		{"too long", strings.Repeat("a", MaxNameLength+1), "more than 253"},
	}
	good := []string{"n1", "N1", "compute-17", "db_3", "host.example.com", "default", "...", ".hidden", "x..y", "-", strings.Repeat("a", MaxNameLength)}
	for _, name := range good {
		t.Run("good "+name[:min(len(name), 20)], func(t *testing.T) {
			if err := ValidNode(name); err != nil {
				t.Fatalf("ValidNode(%q): %v", name, err)
			}
			if err := ValidGroup(name); err != nil {
				t.Fatalf("ValidGroup(%q): %v", name, err)
			}
		})
	}
	for _, tt := range badNames {
		t.Run(tt.name, func(t *testing.T) {
			for kind, valid := range map[string]func(string) error{"node": ValidNode, "group": ValidGroup} {
				err := valid(tt.value)
				if err == nil {
					t.Fatalf("%s name %q accepted", kind, tt.value)
				}
				if msg := err.Error(); !strings.Contains(msg, tt.mention) || !strings.Contains(msg, kind+" name") || strings.ContainsAny(msg, "\n\x00") {
					t.Fatalf("%s name %q: message %q does not say what is wrong on one line", kind, tt.value, msg)
				}
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key  string
		good bool
	}{
		{"service/rebootmgr/n1/disabled", true},
		{"service/rebootmgr/groups/compute/lock", true},
		{"/service/rebootmgr/stop", true}, // the Consul client drops a leading slash
		{"service/rebootmgr/.../stop", true},
		{"service/rebootmgr/a b/disabled", true},
		{"", false},
		{"service/rebootmgr/groups/../limit", false},
		{"service/rebootmgr/x/../n2/reboot_required", false},
		{"service/rebootmgr/./stop", false},
		{"service/rebootmgr//stop", false},
		{"service/rebootmgr/", false},
		{"../service/rebootmgr/stop", false},
		{"service/rebootmgr/n1\n/disabled", false},
		{"service/rebootmgr/n1\x00/disabled", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if err := CheckKey(tt.key); (err == nil) != tt.good {
				t.Fatalf("CheckKey(%q) = %v, want good=%v", tt.key, err, tt.good)
			}
		})
	}
}

// TestKeysOfPathNames: a key built from a name that Consul would clean into another key (path.Clean
// as a model of Consul's cleaning) is refused by CheckKey.
func TestKeysOfPathNames(t *testing.T) {
	k := Keys{Prefix: DefaultPrefix}
	builders := map[string]func(string) []string{
		"Disabled":       func(n string) []string { return []string{k.Disabled(n)} },
		"RebootRequired": func(n string) []string { return []string{k.RebootRequired(n)} },
		"GroupLock":      func(n string) []string { return []string{k.GroupLock(n)} },
		"GroupStop":      func(n string) []string { return []string{k.GroupStop(n)} },
		"GroupLimit":     func(n string) []string { return []string{k.GroupLimit(n)} },
		"GroupHistory":   func(n string) []string { return []string{k.GroupHistory(n)} },
		"LegacyKeys":     func(n string) []string { return k.LegacyKeys(n) },
	}
	names := []string{".", "..", "x/../n1", "../n1", "x/..", "x//n1", "./n1", "n1/", "/n1"}
	refused := 0
	for _, name := range names {
		for b, keys := range builders {
			for _, key := range keys(name) {
				if path.Clean(key) == key {
					continue
				}
				refused++
				if err := CheckKey(key); err == nil {
					t.Errorf("%s(%q) = %q, which Consul cleans to %q: accepted", b, name, key, path.Clean(key))
				}
			}
		}
	}
	if refused < len(names)*len(builders)/2 {
		t.Fatalf("only %d keys of bad names would be cleaned: the test tests little", refused)
	}
}

// TestStoreRefusesBadNames: the store reads and writes nothing for a bad name, even one its
// caller did not check.
func TestStoreRefusesBadNames(t *testing.T) {
	s, a := newStore(t)
	ctx := context.Background()
	a.Client.KV().Put(&api.KVPair{Key: s.Keys.Disabled("n1"), Value: []byte("disk swap")}, nil)
	a.Client.KV().Put(&api.KVPair{Key: s.Keys.RebootRequired("n2"), Value: []byte("kernel")}, nil)
	before := a.KVState()
	for _, name := range []string{"", ".", "..", "x/../n1", "x/../n2", "a b", "n1\n"} {
		t.Run(strings.ReplaceAll(name, "/", "|"), func(t *testing.T) {
			if f, err := s.Disabled(ctx, name); err == nil {
				t.Errorf("Disabled(%q) = %+v", name, f)
			}
			if f, err := s.Trigger(ctx, name); err == nil {
				t.Errorf("Trigger(%q) = %+v", name, f)
			}
			if err := s.SetDisabled(ctx, name, "x"); err == nil {
				t.Errorf("SetDisabled(%q) wrote", name)
			}
			if ok, err := s.DeleteTrigger(ctx, name, 0); err == nil {
				t.Errorf("DeleteTrigger(%q) = %v", name, ok)
			}
			for _, key := range []string{s.Keys.Disabled(name), s.Keys.RebootRequired(name)} {
				if err := CheckKey(key); err == nil {
					continue // a name such as "a b" makes a key of its own, refused above by name
				}
				if _, err := s.Create(ctx, key, "x"); err == nil {
					t.Errorf("Create(%q) wrote", key)
				}
				if f, err := s.Remove(ctx, key); err == nil {
					t.Errorf("Remove(%q) = %+v", key, f)
				}
			}
		})
	}
	for _, group := range []string{".", "..", "x/.."} {
		g := &Consul{Client: s.Client, Keys: s.Keys, Group: group, Logger: s.Logger}
		if _, err := g.Stop(ctx); err == nil {
			t.Errorf("group %q: Stop read", group)
		}
		if _, err := g.WaitStop(ctx); err == nil {
			t.Errorf("group %q: WaitStop waited", group)
		}
		if ok, err := g.StopGroup(ctx, "x"); err == nil {
			t.Errorf("group %q: StopGroup = %v", group, ok)
		}
		if _, _, err := g.History(ctx); err == nil {
			t.Errorf("group %q: History read", group)
		}
		if _, err := g.Limit(ctx); err == nil {
			t.Errorf("group %q: Limit read", group)
		}
	}
	if after := a.KVState(); after != before {
		t.Fatalf("keys changed:\nbefore %s\nafter  %s", before, after)
	}
}
