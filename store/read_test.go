package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// TestConsulErrorsAreTyped: what Consul answers reaches the store's callers as a kind they can
// tell apart with errors.Is (a refusal of the token, Consul not answering, a request too large),
// and the error still says what Consul said and what was read or written.
func TestConsulErrorsAreTyped(t *testing.T) {
	a := consultest.DevACL(t, "n1")
	keys := Keys{Prefix: DefaultPrefix}
	store := func(token, addr string) *Consul {
		client, err := api.NewClient(&api.Config{Address: addr, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return &Consul{Client: client, Keys: keys, Logger: slog.New(slog.DiscardHandler)}
	}
	anonymous := store("", a.HTTPAddr)
	admin := store(consultest.ManagementToken, a.HTTPAddr)
	// Consul says it hid results only to a token it knows (never to the anonymous one).
	policy, _, err := admin.Client.ACL().PolicyCreate(&api.ACLPolicy{Name: "stop-only", Rules: `key "` + keys.Stop() + `" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := admin.Client.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopOnly := store(token.SecretID, a.HTTPAddr)
	if _, err := admin.Create(context.Background(), keys.Member("galera", "n1"), "first seen"); err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := closed.Addr().String()
	closed.Close()
	away := store(consultest.ManagementToken, gone)
	large := strings.Repeat("x", 600<<10)
	set := func(key, value string) *api.TxnOp {
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: []byte(value)}}
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		do      func() error
		kind    error
		mention []string
	}{
		{"a write refused", func() error { _, err := anonymous.Create(ctx, keys.Stop(), "x"); return err }, ErrDenied, []string{keys.Stop(), "Permission denied"}},
		{"a read refused", func() error { _, err := anonymous.Flag(ctx, keys.Stop()); return err }, ErrDenied, []string{keys.Stop(), "Permission denied"}},
		{"a transaction refused", func() error { _, err := anonymous.txn(ctx, api.TxnOps{set(keys.Claims(), "x")}); return err }, ErrDenied, []string{keys.Claims(), "Permission denied"}},
		{"keys hidden", func() error { _, err := stopOnly.MemberOf(ctx, "n1"); return err }, ErrFiltered, []string{keys.MembersPrefix()}},
		{"a transaction's keys hidden", func() error { _, err := stopOnly.View(ctx); return err }, ErrFiltered, []string{keys.Lock()}},
		{"consul away", func() error { _, err := away.Flag(ctx, keys.Stop()); return err }, ErrUnavailable, []string{keys.Stop()}},
		{"a value too large", func() error { _, err := admin.Create(ctx, keys.Stop(), large); return err }, ErrTooLarge, []string{keys.Stop()}},
		{"a transaction too large", func() error { _, err := admin.txn(ctx, api.TxnOps{set(keys.Claims(), large)}); return err }, ErrTooLarge, []string{keys.Claims()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
			for _, kind := range []error{ErrDenied, ErrUnavailable, ErrTooLarge, ErrFiltered} {
				if kind != tt.kind && errors.Is(err, kind) {
					t.Errorf("err = %v is also %v", err, kind)
				}
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %v, want it to mention %q", err, m)
				}
			}
		})
	}
}
