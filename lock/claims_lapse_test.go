package lock_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// TestLapsedClaimsLeaveTheRecord: only its own node takes a claim away, so the claims of nodes
// whose daemons died and never came back (decommissioned, renamed, moved to --watch=false)
// would pile up; lapsed, they hold up nobody, count against no MaxClaims, and go with the next
// claim written: 64 month-old claims keep no live node from claiming.
func TestLapsedClaimsLeaveTheRecord(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := lock.Claims{Version: lock.Version}
	for i := range lock.MaxClaims {
		old := now.AddDate(0, -1, 0)
		c.Claims = append(c.Claims, lock.Claim{Node: fmt.Sprintf("gone%02d", i), AtOnce: 1, Services: []string{"quobyte"}, Seen: []string{"x"}, Judged: old, Until: old.Add(10 * time.Minute)})
	}
	for _, cl := range c.Claims {
		if cl.Holds(5, []string{"quobyte"}, map[string]string{}, now) {
			t.Fatalf("a month-old claim holds: %+v", cl)
		}
	}
	fresh := lock.Claim{Node: "ctl1", AtOnce: 1, Services: []string{"quobyte"}, Seen: []string{"h1"}, Judged: now, Until: now.Add(10 * time.Minute)}
	if _, err := c.With(fresh); errors.Is(err, lock.ErrTooManyClaims) {
		t.Errorf("64 claims that lapsed a month ago keep a live node from claiming: %v", err)
	}
	if after, _ := c.With(fresh); len(after.Claims) != 1 {
		t.Errorf("lapsed claims left in the record: %d claims", len(after.Claims))
	}
}
