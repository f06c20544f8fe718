package consultest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// ServiceCheckID is the id of the TTL check RegisterService gives a service.
func ServiceCheckID(service string) string { return "service:" + service + ":ttl" }

// RegisterService registers a service on the agent's own node with a TTL check in status, and
// waits until the catalog shows it.
func (a *Agent) RegisterService(service string, tags []string, status string) {
	a.t.Helper()
	err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: service, Name: service, Tags: tags,
		Check: &api.AgentServiceCheck{CheckID: ServiceCheckID(service), TTL: "1h", Status: status},
	})
	if err != nil {
		a.t.Fatalf("register service %s: %v", service, err)
	}
	a.WaitCheck(a.Node, service, ServiceCheckID(service), status)
}

// SetService sets the status of a service's TTL check on the agent's node and waits until the
// catalog shows it.
func (a *Agent) SetService(service, status string) {
	a.t.Helper()
	if err := a.Client.Agent().UpdateTTL(ServiceCheckID(service), "set by the test", status); err != nil {
		a.t.Fatalf("set check of %s to %s: %v", service, status, err)
	}
	a.WaitCheck(a.Node, service, ServiceCheckID(service), status)
}

// RegisterScriptService registers a service on the agent's node whose check runs a script.
func (a *Agent) RegisterScriptService(service string, tags []string, script, interval, timeout string) {
	a.t.Helper()
	err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: service, Name: service, Tags: tags,
		Check: &api.AgentServiceCheck{CheckID: "service:" + service, Args: []string{"/bin/sh", "-c", script}, Interval: interval, Timeout: timeout},
	})
	if err != nil {
		a.t.Fatalf("register service %s: %v", service, err)
	}
}

// NodeCheck is a check of a node registered through the catalog.
type NodeCheck struct {
	CheckID string
	Status  string
	Notes   string
}

// RegisterRemote registers an instance of service on another node, one without an agent,
// through the catalog: its service check and any node checks (such as _node_maintenance).
// It waits until the health catalog shows it.
func (a *Agent) RegisterRemote(node, service string, tags []string, status string, nodeChecks ...NodeCheck) {
	a.t.Helper()
	a.RegisterRemoteQuiet(node, service, tags, status, nodeChecks...)
	a.WaitCheck(node, service, "service:"+service, status)
}

// RegisterRemoteQuiet is RegisterRemote without the wait (the catalog write is done when it
// returns), for registering many nodes.
func (a *Agent) RegisterRemoteQuiet(node, service string, tags []string, status string, nodeChecks ...NodeCheck) {
	a.t.Helper()
	checks := api.HealthChecks{{Node: node, CheckID: "service:" + service, Name: service, Status: status, ServiceID: service}}
	for _, c := range nodeChecks {
		checks = append(checks, &api.HealthCheck{Node: node, CheckID: c.CheckID, Name: c.CheckID, Status: c.Status, Notes: c.Notes})
	}
	_, err := a.Client.Catalog().Register(&api.CatalogRegistration{
		Node: node, Address: "127.0.0.2",
		Service: &api.AgentService{ID: service, Service: service, Tags: tags},
		Checks:  checks,
	}, nil)
	if err != nil {
		a.t.Fatalf("register %s on %s: %v", service, node, err)
	}
}

// WaitCheck waits, with blocking queries, until the health catalog shows checkID of service on
// node in status.
func (a *Agent) WaitCheck(node, service, checkID, status string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var index uint64
	last := "not registered"
	for {
		entries, meta, err := a.Client.Health().Service(service, "", false, (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx))
		if err != nil {
			a.t.Fatalf("wait for check %s of %s on %s to be %s (last seen: %s): %v", checkID, service, node, status, last, err)
		}
		index = meta.LastIndex
		for _, e := range entries {
			if e.Node.Node != node {
				continue
			}
			for _, c := range e.Checks {
				if c.CheckID == checkID {
					last = c.Status
					if c.Status == status {
						return
					}
				}
			}
		}
	}
}

// KVState is every key of the agent's KV store with its value and ModifyIndex, in one line:
// two equal states mean nothing was written in between.
func (a *Agent) KVState() string {
	a.t.Helper()
	pairs, _, err := a.Client.KV().List("", nil)
	if err != nil {
		a.t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&b, "%s=%q@%d ", p.Key, p.Value, p.ModifyIndex)
	}
	return b.String()
}

// Stored reads key through kv and decodes it: the zero value when the key is absent, a fatal
// error when it cannot be read or decoded.
func Stored[T any](t testing.TB, kv *api.KV, key string, decode func([]byte) (T, error)) T {
	t.Helper()
	var zero T
	pair, _, err := kv.Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pair == nil {
		return zero
	}
	v, err := decode(pair.Value)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}
