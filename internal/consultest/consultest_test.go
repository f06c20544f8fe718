package consultest

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestServerSurvivesRestart(t *testing.T) {
	start := time.Now()
	s := Server(t, "s1")
	t.Logf("server ready in %s", time.Since(start))
	if _, err := s.Client.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	c := Client(t, "c1", s)
	s.Kill()
	start = time.Now()
	s.Start()
	t.Logf("server back in %s", time.Since(start))
	pair, _, err := c.Client.KV().Get("k", nil)
	if err != nil || pair == nil || string(pair.Value) != "v" {
		t.Fatalf("state lost over a restart: %v %v", pair, err)
	}
}

// TestWAN: servers of two datacenters joined over the WAN, each with a client, reach each
// other's datacenter from either client.
func TestWAN(t *testing.T) {
	s1 := WANServer(t, "s1", "dc1", nil)
	s2 := WANServer(t, "s2", "dc2", s1)
	c1 := Client(t, "c1", s1, "-datacenter", "dc1")
	c2 := Client(t, "c2", s2, "-datacenter", "dc2")
	c1.WaitDatacenters("dc1", "dc2")
	c2.WaitDatacenters("dc1", "dc2")
	dcs, err := c1.Client.Catalog().Datacenters()
	if err != nil || len(dcs) != 2 {
		t.Fatalf("datacenters: %v, %v", dcs, err)
	}
	if _, err := c1.Client.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, &api.WriteOptions{Datacenter: "dc2"}); err != nil {
		t.Fatal(err)
	}
	if p, _, err := c2.Client.KV().Get("k", nil); err != nil || p == nil {
		t.Fatalf("dc2's key written from dc1: %v, %v", p, err)
	}
}
