package lock

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Claims are the nodes waiting for room that go before others when it opens: a node whose
// services allow fewer reboots at once than a service it shares with others (three controllers
// that go one at a time, beside a storage service that lets five of the fleet's nodes go)
// waits for that shared room, and must not lose every place that opens in it to nodes with room
// to spare, or the scarce nodes are left to the end, one after another. Each such node claims
// the room it waits for; a node with more room yields a place in those services to it until it
// has judged the room that opened (see Claim.Holds). A claim only ever holds a node back: it
// orders, it never admits.
type Claims struct {
	Version int     `json:"version"`
	Claims  []Claim `json:"claims"`
}

// Claim is one node waiting for room.
type Claim struct {
	Node string `json:"node"`
	// AtOnce is how many reboots at once the node's scarcest service allows: nodes whose own
	// services allow more yield to it.
	AtOnce int `json:"at_once"`
	// Services are the node's services that allow more than AtOnce: where it needs room others
	// could take.
	Services []string `json:"services"`
	// Seen are the holders of the fleet's record it counted when it last judged its health (the
	// reboots in flight every node reads alike): once one of them ended, it may fit, and others
	// yield until it has looked.
	Seen []string `json:"seen"`
	// Judged is when it last judged; Until is when the claim lapses unless judged again (a
	// node whose daemon is gone holds up nobody for longer).
	Judged time.Time `json:"judged"`
	Until  time.Time `json:"until"`
}

// MaxClaims is how many claims the record holds: a node beyond them waits without one.
const MaxClaims = 64

// A claim is read with the clock of the node that reads it, and written with the claimant's:
// one judged more than ClaimSkew after the reader's now (the claimant's clock ahead, or the
// reader's set back) holds up nobody, and none lasts beyond MaxClaimFor after it was judged,
// whatever its Until says. A clock that jumps thus costs a claim its priority, never stalls the
// nodes that would yield to it for longer than MaxClaimFor.
const (
	ClaimSkew   = time.Minute
	MaxClaimFor = time.Hour
)

// DecodeClaims parses a stored claims record strictly, as Decode a lock record.
func DecodeClaims(data []byte) (Claims, error) {
	return decodeNodeRecord(data, "claims", "claims", nil,
		func(c Claims) int { return c.Version }, func(c Claims) []Claim { return c.Claims }, func(cl Claim) string { return cl.Node })
}

// Encode is the record as stored.
func (c Claims) Encode() ([]byte, error) {
	c.Version = Version
	if c.Claims == nil {
		c.Claims = []Claim{}
	}
	return json.Marshal(c)
}

// Of is node's claim, if it has one.
func (c Claims) Of(node string) (Claim, bool) {
	i := slices.IndexFunc(c.Claims, func(cl Claim) bool { return cl.Node == node })
	if i < 0 {
		return Claim{}, false
	}
	return c.Claims[i], true
}

// ErrTooManyClaims means the record holds MaxClaims claims of other nodes already.
var ErrTooManyClaims = errors.New("too many nodes claim room already")

// With is the record with cl as its node's claim (replacing an older one); the claims that
// lapsed by cl's Judged go (a node gone for good never takes its own away).
func (c Claims) With(cl Claim) (Claims, error) {
	out := c.Without(cl.Node)
	out.Claims = slices.DeleteFunc(out.Claims, func(o Claim) bool { return o.Lapsed(cl.Judged) })
	if len(out.Claims) >= MaxClaims {
		return c, fmt.Errorf("%w (%d)", ErrTooManyClaims, MaxClaims)
	}
	out.Claims = append(out.Claims, cl)
	return out, nil
}

// Without is the record without node's claim.
func (c Claims) Without(node string) Claims {
	return Claims{Version: c.Version, Claims: slices.DeleteFunc(slices.Clone(c.Claims), func(cl Claim) bool { return cl.Node == node })}
}

// Same says whether two claims ask the same: a claim judged again on the same reboots in flight
// need not be written again until it nears its end.
func (cl Claim) Same(o Claim) bool {
	return cl.Node == o.Node && cl.AtOnce == o.AtOnce && slices.Equal(cl.Services, o.Services) && slices.Equal(cl.Seen, o.Seen)
}

// Lapsed says whether cl holds up nobody any more at now, whatever else: past its Until, or
// MaxClaimFor after it was judged. (One judged in the reader's future has not lapsed: it counts
// for nothing until the reader's clock is within ClaimSkew of it.)
func (cl Claim) Lapsed(now time.Time) bool {
	return !now.Before(cl.End())
}

// End is when cl lapses: its Until, MaxClaimFor after it was judged at the latest.
func (cl Claim) End() time.Time {
	return earliestOf(cl.Until, cl.Judged.Add(MaxClaimFor))
}

func earliestOf(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Holds says whether cl holds back a node whose scarcest service allows atOnce reboots at once
// and that runs services, at now, with inFlight the reboots in flight as cl's node would count
// them: its node allows fewer at once, it needs room in one of those services, it has not
// lapsed (see ClaimSkew), and a reboot it counted has ended since it last judged (it may fit
// now; until it has looked, the place is its to take). A claimant that looked and still does
// not fit holds up nobody.
func (cl Claim) Holds(atOnce int, services []string, inFlight map[string]string, now time.Time) bool {
	if cl.AtOnce >= atOnce || cl.Lapsed(now) || cl.Judged.After(now.Add(ClaimSkew)) {
		return false
	}
	if !slices.ContainsFunc(cl.Services, func(s string) bool { return slices.Contains(services, s) }) {
		return false
	}
	return slices.ContainsFunc(cl.Seen, func(n string) bool { _, still := inFlight[n]; return !still })
}

// YieldError says which node a place is left to, and until when at most.
type YieldError struct {
	Claim Claim
}

func (e *YieldError) Error() string {
	return fmt.Sprintf("%s waits for room in %s and its rules allow %d reboot(s) at once, fewer than this node's: a reboot it counted ended, and it goes first (until it has looked, at most until %s)",
		e.Claim.Node, strings.Join(e.Claim.Services, ", "), e.Claim.AtOnce, e.Claim.End().UTC().Format(time.RFC3339))
}

// Unwrap is ErrYields.
func (e *YieldError) Unwrap() error { return ErrYields }

// ErrYields means a node leaves the room that opened to a node whose rules allow fewer reboots
// at once (see Claims).
var ErrYields = errors.New("yields to a node with less room")
