package lock

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestClaimHolds(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cl := Claim{Node: "ctl2", AtOnce: 1, Services: []string{"quobyte"}, Seen: []string{"cmp1", "ctl1"}, Judged: t0, Until: t0.Add(10 * time.Minute)}
	both := map[string]string{"cmp1": "", "ctl1": ""}
	one := map[string]string{"ctl1": ""}
	for _, tt := range []struct {
		name     string
		atOnce   int
		services []string
		inFlight map[string]string
		now      time.Time
		want     bool
	}{
		{"a reboot it counted ended: it goes first", 5, []string{"nova", "quobyte"}, one, t0, true},
		{"nothing it counted ended", 5, []string{"quobyte"}, both, t0, false},
		{"nothing it counted ended, one more in flight", 5, []string{"quobyte"}, map[string]string{"cmp1": "", "ctl1": "", "cmp2": ""}, t0, false},
		{"as little room as the claimant", 1, []string{"quobyte"}, one, t0, false},
		{"no service shared", 5, []string{"nova"}, one, t0, false},
		{"lapsed", 5, []string{"quobyte"}, one, t0.Add(10 * time.Minute), false},
		{"judged within the skew allowed", 5, []string{"quobyte"}, one, t0.Add(-ClaimSkew), true},
		{"judged in the reader's future (the claimant's clock ahead)", 5, []string{"quobyte"}, one, t0.Add(-ClaimSkew - time.Second), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := cl.Holds(tt.atOnce, tt.services, tt.inFlight, tt.now); got != tt.want {
				t.Fatalf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
	long := cl
	long.Until = t0.AddDate(1, 0, 0)
	for _, tt := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"an Until a year away, within the longest a claim lasts", t0.Add(MaxClaimFor - time.Second), true},
		{"an Until a year away, past the longest a claim lasts", t0.Add(MaxClaimFor), false},
	} {
		if got := long.Holds(5, []string{"quobyte"}, one, tt.now); got != tt.want {
			t.Errorf("%s: Holds = %v, want %v", tt.name, got, tt.want)
		}
	}
	if err := (&YieldError{Claim: cl}); !errors.Is(err, ErrYields) || !strings.Contains(err.Error(), "ctl2 waits for room in quobyte") {
		t.Fatalf("yield error: %v", err)
	}
}

func TestClaimsRecord(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var c Claims
	c, err := c.With(Claim{Node: "a", AtOnce: 1, Services: []string{"s"}, Seen: []string{"x"}, Judged: t0, Until: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = c.With(Claim{Node: "a", AtOnce: 2, Until: t0})
	if a, ok := c.Of("a"); !ok || a.AtOnce != 2 || len(c.Claims) != 1 {
		t.Fatalf("a claim written again replaces the older: %+v", c)
	}
	data, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeClaims(data)
	if err != nil || len(back.Claims) != 1 || back.Claims[0].Node != "a" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if c = c.Without("a"); len(c.Claims) != 0 {
		t.Fatalf("without: %+v", c)
	}
	for i := range MaxClaims {
		c, _ = c.With(Claim{Node: fmt.Sprint(i), Judged: t0, Until: t0.Add(time.Minute)})
	}
	if _, err := c.With(Claim{Node: "one too many", Judged: t0, Until: t0.Add(time.Minute)}); !errors.Is(err, ErrTooManyClaims) {
		t.Fatalf("claim beyond %d: %v", MaxClaims, err)
	}
	if _, err := c.With(Claim{Node: "0", AtOnce: 3, Judged: t0, Until: t0.Add(time.Minute)}); err != nil {
		t.Fatalf("a node with a claim may write it again when the record is full: %v", err)
	}
	for _, bad := range []string{
		``, `[]`, `{"version":1,"claims":[{"node":""}]}`,
		`{"version":1,"claims":[{"node":"a"},{"node":"a"}]}`, `{"version":1,"claims":[],"x":1}`,
		`{"version":1,"claims":[{"node":"a","extra":1}]}`, `{"version":99,"claims":[]}`, `{"version":0,"claims":[]}`,
	} {
		if _, err := DecodeClaims([]byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}
