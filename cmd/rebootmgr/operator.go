package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/store"
)

// operator is what the operator commands share: the Consul client and the store.
type operator struct {
	client *api.Client
	store  *store.Consul
	keys   store.Keys
}

func (g *connFlags) operator(e env, stderr io.Writer) (*operator, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	log, err := g.logger(stderr)
	if err != nil {
		return nil, err
	}
	client, err := g.consul(e)
	if err != nil {
		return nil, err
	}
	keys := store.Keys{Prefix: g.prefix}
	return &operator{client: client, keys: keys, store: &store.Consul{Client: client, Keys: keys, Logger: log}}, nil
}

// inGroup is o with its store of group (see store.Consul.ForGroup).
func (o *operator) inGroup(group string) *operator {
	return &operator{client: o.client, keys: o.keys, store: o.store.ForGroup(group)}
}

// node is the node a command is about: its argument, else --node, else the local agent's.
func (o *operator) node(ctx context.Context, args []string, flagNode string) (string, error) {
	if len(args) > 0 {
		return args[0], nodeArg(args[0])
	}
	if flagNode != "" {
		return flagNode, nodeFlag(flagNode)
	}
	return store.NodeName(ctx, o.client)
}

// stamp says who did something, where and when, for the value of a key an operator writes.
func stamp(e env, now time.Time) string {
	who := e.get("SUDO_USER")
	if who == "" {
		who = e.get("USER")
	}
	if who == "" {
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return fmt.Sprintf("by %s on %s at %s", who, host, now.UTC().Format(time.RFC3339))
}

// withReason is a key's value: the reason, if any, and who wrote it.
func withReason(reason string, e env, now time.Time) string {
	if reason == "" {
		return "(" + stamp(e, now) + ")"
	}
	return reason + " (" + stamp(e, now) + ")"
}

// requireKnown refuses to write for a node Consul has never heard of (a typo, most often),
// unless forced.
func (o *operator) requireKnown(ctx context.Context, node string, force bool) error {
	if force {
		return nil
	}
	known, _, err := o.store.CatalogNode(ctx, node)
	if errors.Is(err, store.ErrFiltered) {
		return fmt.Errorf("this token cannot see whether node %s exists: %w; nothing written; --force writes anyway", node, err)
	}
	if err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("node %s is not in consul's catalog (a typo?): nothing written; --force writes anyway", node)
	}
	return nil
}

// ownGroup is this node's group, for a hint: REBOOTMGR_GROUP, else the local agent's node meta,
// else the default group (GROUP when the agent cannot tell).
func (o *operator) ownGroup(ctx context.Context, e env) string {
	if v, _, ok := e.setting("REBOOTMGR_GROUP"); ok && v != "" {
		return v
	}
	_, meta, err := store.LocalNode(ctx, o.client)
	if err != nil {
		return "GROUP"
	}
	if g := meta[store.GroupMeta]; g != "" {
		return g
	}
	return store.DefaultGroup
}

// groupOf is node's group: the one given, else its node meta rebootmgr-group, else the default.
func (o *operator) groupOf(ctx context.Context, node, given string) (string, error) {
	if given != "" {
		// No read needed.
		return groupIn(node, given, nil)
	}
	_, meta, err := o.store.CatalogNode(ctx, node)
	if err != nil {
		return "", err
	}
	return groupIn(node, given, meta)
}

// groupIn is node's group: the one given, else the group its catalog meta names, else the
// default.
func groupIn(node, given string, meta map[string]string) (string, error) {
	if given != "" {
		return given, groupFlag(given)
	}
	if g := meta[store.GroupMeta]; g != "" {
		return g, groupMeta(node, g)
	}
	return store.DefaultGroup, nil
}
