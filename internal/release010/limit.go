package release010

import (
	"fmt"
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
