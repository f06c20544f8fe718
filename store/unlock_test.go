package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/lock"
)

// TestUnlockWritesAgainstItsRead: Unlock judges one read and writes with check-and-set; a change
// of the entry it judged made in between (here: while the judge looks) is a conflict and nothing
// is written, while a change of anything else is read again and written against.
func TestUnlockWritesAgainstItsRead(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n1 := lock.Holder{Node: "n1", Phase: lock.Rebooting, Since: t0, Updated: t0, BootID: "b1"}
	n2 := lock.Holder{Node: "n2", Phase: lock.Preparing, Since: t0, Updated: t0}
	record := func(hs ...lock.Holder) string {
		data, err := lock.Record{Holders: hs}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	errRefused := errors.New("refused by the judge")
	tests := []struct {
		name    string
		stored  string // "" : no key
		node    string
		meddle  func(kv *api.KV, key string) // what happens while the judge looks
		refuse  bool
		wantErr string // "" : released
		// want is the record after ("" : no key); unchanged means as stored, ModifyIndex too.
		want      string
		unchanged bool
		judged    bool
	}{
		{name: "the only holder", stored: record(n1), node: "n1", judged: true, want: ""},
		{name: "one of two", stored: record(n2, n1), node: "n1", judged: true, want: record(n2)},
		{name: "refused", stored: record(n1), node: "n1", refuse: true, judged: true, wantErr: errRefused.Error(), unchanged: true},
		// Another holder changes nothing judged: the place is given back against the new read.
		{name: "another node joined while judged", stored: record(n1), node: "n1", judged: true,
			meddle: func(kv *api.KV, key string) { kv.Put(&api.KVPair{Key: key, Value: []byte(record(n1, n2))}, nil) },
			want:   record(n2)},
		{name: "holder moved on while judged", stored: record(n2, n1), node: "n1", judged: true, wantErr: "changed by someone else",
			meddle: func(kv *api.KV, key string) {
				kv.Put(&api.KVPair{Key: key, Value: []byte(record(n2, lock.Holder{Node: "n1", Phase: lock.Finishing, Since: t0, Updated: t0.Add(time.Minute)}))}, nil)
			},
			want: record(n2, lock.Holder{Node: "n1", Phase: lock.Finishing, Since: t0, Updated: t0.Add(time.Minute)})},
		// Consul keeps the index of a key written with the value it has: nothing changed.
		{name: "the same record written again while judged", stored: record(n1), node: "n1", judged: true,
			meddle: func(kv *api.KV, key string) { kv.Put(&api.KVPair{Key: key, Value: []byte(record(n1))}, nil) },
			want:   ""},
		{name: "deleted and taken again while judged", stored: record(n1), node: "n1", judged: true, wantErr: "changed by someone else",
			meddle: func(kv *api.KV, key string) {
				kv.Delete(key, nil)
				kv.Put(&api.KVPair{Key: key, Value: []byte(record(n2))}, nil)
			},
			want: record(n2)},
		{name: "not a holder", stored: record(n2), node: "n1", wantErr: "n1 does not hold the reboot lock", unchanged: true},
		{name: "no lock", node: "n1", wantErr: "n1 does not hold the reboot lock", unchanged: true},
		{name: "damaged record", stored: `{"version":1,"holder":[]}`, node: "n1", wantErr: `unknown field "holder"`, unchanged: true},
		{name: "a name Consul would clean", stored: record(n1), node: "x/../n1", wantErr: "node name", unchanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, a := newStore(t)
			kv := a.Client.KV()
			key := s.Keys.Lock()
			if tt.stored != "" {
				if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(tt.stored)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			before, _, _ := kv.Get(key, nil)
			judged := false
			removed, err := s.Unlock(context.Background(), tt.node, func(h lock.Holder) error {
				judged = true
				if h.Node != tt.node || h.BootID != "b1" {
					t.Errorf("judged %+v", h)
				}
				if tt.meddle != nil {
					tt.meddle(kv, key)
				}
				if tt.refuse {
					return errRefused
				}
				return nil
			})
			if judged != tt.judged {
				t.Fatalf("judged = %v, want %v", judged, tt.judged)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Unlock: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Unlock err = %v, want it to mention %q", err, tt.wantErr)
			case tt.wantErr == "" && removed.Node != tt.node:
				t.Fatalf("removed %+v", removed)
			}
			if strings.Contains(tt.wantErr, "changed by someone else") && !errors.Is(err, ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
			after, _, _ := kv.Get(key, nil)
			if tt.unchanged {
				if (before == nil) != (after == nil) || before != nil && (before.ModifyIndex != after.ModifyIndex || string(before.Value) != string(after.Value)) {
					t.Fatalf("record changed: %v -> %v", before, after)
				}
				return
			}
			switch {
			case tt.want == "" && after != nil:
				t.Fatalf("record left: %s", after.Value)
			case tt.want != "" && (after == nil || string(after.Value) != tt.want):
				t.Fatalf("record = %v, want %s", after, tt.want)
			}
		})
	}
}
