package lock

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limit is how many nodes of a group may hold its lock at once: a number, "auto" (as many as
// the quorum rules of the services the nodes run allow: the health gate, which counts every
// reboot in flight, decides), or a share of the group's nodes known to Consul ("10%", rounded
// down, at least 1). PerZone, when set, bounds each zone of the group (a node's zone is its
// node meta rebootmgr-zone): at most PerZone holders, all of one zone at a time.
type Limit struct {
	N       int
	Auto    bool
	Percent int
	PerZone int
}

// One is the limit of a group without one set.
var One = Limit{N: 1}

// perZoneWord starts the zone bound in a limit's value.
const perZoneWord = "per-zone="

// ParseLimit reads a limit as the limit key holds it: "3", "auto", "10%", each optionally
// followed by " per-zone=N".
func ParseLimit(value string) (Limit, error) {
	fields := strings.Fields(value)
	if len(fields) == 0 || len(fields) > 2 {
		return Limit{}, fmt.Errorf("limit %q: want N, auto or P%%, optionally followed by per-zone=N", value)
	}
	var l Limit
	switch f := fields[0]; {
	case f == "auto":
		l.Auto = true
	case strings.HasSuffix(f, "%"):
		p, err := strconv.Atoi(strings.TrimSuffix(f, "%"))
		if err != nil || p < 1 || p > 100 {
			return Limit{}, fmt.Errorf("limit %q: a share is a whole percentage from 1%% to 100%%", value)
		}
		l.Percent = p
	default:
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return Limit{}, fmt.Errorf("limit %q is not a whole number of at least 1, auto, or a percentage", value)
		}
		l.N = n
	}
	if len(fields) == 2 {
		z, ok := strings.CutPrefix(fields[1], perZoneWord)
		n, err := strconv.Atoi(z)
		if !ok || err != nil || n < 1 {
			return Limit{}, fmt.Errorf("limit %q: want per-zone=N with N at least 1 after the limit", value)
		}
		l.PerZone = n
	}
	return l, nil
}

// String is the limit as the limit key holds it.
func (l Limit) String() string {
	var s string
	switch {
	case l.Auto:
		s = "auto"
	case l.Percent > 0:
		s = strconv.Itoa(l.Percent) + "%"
	default:
		s = strconv.Itoa(l.N)
	}
	if l.PerZone > 0 {
		s += " " + perZoneWord + strconv.Itoa(l.PerZone)
	}
	return s
}

// Places is how many nodes may hold the lock at once in a group of groupNodes nodes known to
// Consul. ruled says whether the node asking runs a service with quorum rules: under auto, a
// node with none has nothing to decide by and reboots only alone.
func (l Limit) Places(groupNodes int, ruled bool) int {
	switch {
	case l.Auto && ruled:
		return math.MaxInt
	case l.Auto:
		return 1
	case l.Percent > 0:
		return max(1, groupNodes*l.Percent/100)
	}
	return max(1, l.N)
}

// Describe says the limit in words, with what it comes to in a group of groupNodes nodes.
func (l Limit) Describe(groupNodes int) string {
	var s string
	switch {
	case l.Auto:
		s = "auto (as many as the quorum rules allow)"
	case l.Percent > 0:
		s = fmt.Sprintf("%d%% of %d nodes: %d at a time", l.Percent, groupNodes, l.Places(groupNodes, true))
	default:
		s = fmt.Sprintf("%d at a time", l.N)
	}
	if l.PerZone > 0 {
		s += fmt.Sprintf(", at most %d per zone and one zone at a time", l.PerZone)
	}
	return s
}

// AcquireWithin adds h to the lock if l allows it in a group of groupNodes nodes (see Places
// and ZoneError).
func (r Record) AcquireWithin(h Holder, l Limit, groupNodes int, ruled bool) (Record, error) {
	if _, ok := r.Holder(h.Node); ok {
		return r, nil
	}
	if err := r.ZoneError(h.Node, h.Zone, l.PerZone); err != nil {
		return r, err
	}
	return r.Acquire(h, l.Places(groupNodes, ruled))
}

// ZoneError says why a node of zone may not take a place with perZone (0: no bound): another
// zone of the group holds places, or its own holds perZone of them already; nil when it may.
// A node of no zone ("") is a zone of its own: nothing says which zone it shares a failure
// domain with, so it holds a place only alone, and nobody beside it.
func (r Record) ZoneError(node, zone string, perZone int) error {
	if perZone <= 0 {
		return nil
	}
	in := 0
	for _, h := range r.Holders {
		if h.Node == node {
			continue
		}
		if zone == "" || h.Zone != zone {
			e := &FullError{Limit: perZone, Holders: append([]Holder(nil), r.Holders...), Zone: zoneName(h.Zone), Other: true}
			if h.Zone == "" {
				e.ZoneLess = h.Node
			} else if zone == "" {
				e.ZoneLess = node
			}
			return e
		}
		in++
	}
	if in >= perZone {
		return &FullError{Limit: perZone, Holders: append([]Holder(nil), r.Holders...), Zone: zoneName(zone)}
	}
	return nil
}

func zoneName(z string) string {
	if z == "" {
		return "(no zone)"
	}
	return z
}
