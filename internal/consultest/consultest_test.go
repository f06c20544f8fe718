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
