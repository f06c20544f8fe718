// Package health decides whether the services a node's reboot depends on are healthy enough
// for it to go down. Only services carrying the tag "rebootmgr" count; their tags carry the
// quorum rules (min_passing=N, max_failing=N, ignore_maintenance) over all instances of the
// service in the cluster, or say that only this node's instance counts (local_only).
package health

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrMalformedTag is a rule tag that cannot be read (min_passing=abc, a negative count, a rule
// given twice, local_only with a quorum rule): the service's definition is wrong, which no
// waiting fixes. Every error of ParseRules wraps it.
var ErrMalformedTag = errors.New("malformed tag")

// Tag marks a service whose health gates this node's reboot.
const Tag = "rebootmgr"

// The tags that carry rules.
const (
	tagMinPassing        = "min_passing"
	tagMaxFailing        = "max_failing"
	tagIgnoreMaintenance = "ignore_maintenance"
	tagLocalOnly         = "local_only"
)

// NodeMaintenanceCheck is the check Consul adds to a node in maintenance mode.
const NodeMaintenanceCheck = "_node_maintenance"

// The Python rebootmgr's tags of a service whose health gated only the checks before the
// reboot (PythonPreboot) or only those after it (PythonPostboot). rebootmgr judges a service
// tagged Tag before the reboot and after it alike; one tagged only so is refused (see
// ParseRules), never silently left out: it gated something, and what is meant cannot be
// guessed.
const (
	PythonPreboot  = "rebootmgr_preboot"
	PythonPostboot = "rebootmgr_postboot"
)

// AddTags adds an instance's tags to to (each once) when the instance carries Tag (or a tag of
// the Python rebootmgr's, see PythonPreboot), and reports whether it did: the tags of a node's
// instances of a service are the rules it is judged by.
func AddTags(to, tags []string) ([]string, bool) {
	if !slices.Contains(tags, Tag) && !slices.Contains(tags, PythonPreboot) && !slices.Contains(tags, PythonPostboot) {
		return to, false
	}
	for _, t := range tags {
		if !slices.Contains(to, t) {
			to = append(to, t)
		}
	}
	return to, true
}

// Rules are the quorum rules of one service. A negative count means the rule is not given.
type Rules struct {
	MinPassing        int
	MaxFailing        int
	IgnoreMaintenance bool
	// LocalOnly: only this node's instance counts (a node's own state: dkms, updating).
	LocalOnly bool
}

// Quorum reports whether a quorum rule is given; without one every instance must pass.
func (r Rules) Quorum() bool { return r.MinPassing >= 0 || r.MaxFailing >= 0 }

// AtOnce is how many instances of a service of total instances the rules let go down at once
// for a reboot, the rebooting node's own among them: max_failing=M lets M+1 go, min_passing=P
// lets total-P+1 (both given: the fewer), no quorum rule one (every other instance must pass),
// local_only any number (only the node's own instance counts: math.MaxInt). At least 0.
func (r Rules) AtOnce(total int) int {
	if r.LocalOnly {
		return math.MaxInt
	}
	if !r.Quorum() {
		return 1
	}
	n := max(total, 1)
	if r.MaxFailing >= 0 {
		n = min(n, r.MaxFailing+1)
	}
	if r.MinPassing >= 0 {
		n = min(n, total-r.MinPassing+1)
	}
	return max(n, 0)
}

// FleetRule says whether tags, those of a node's instance of a service, carry a rule over the
// service's instances across the fleet: the service is tagged rebootmgr, its rules can be
// read, and they are not local_only (which counts this node's own instance only, and says
// nothing of which other nodes may be down with it). A node with none has no rule to decide by
// how many of its group may reboot beside it.
func FleetRule(tags []string) bool {
	if !slices.Contains(tags, Tag) {
		return false
	}
	r, err := ParseRules(tags)
	return err == nil && !r.LocalOnly
}

func (r Rules) String() string {
	var parts []string
	if r.MinPassing >= 0 {
		parts = append(parts, fmt.Sprintf("%s=%d", tagMinPassing, r.MinPassing))
	}
	if r.MaxFailing >= 0 {
		parts = append(parts, fmt.Sprintf("%s=%d", tagMaxFailing, r.MaxFailing))
	}
	if r.IgnoreMaintenance {
		parts = append(parts, tagIgnoreMaintenance)
	}
	if r.LocalOnly {
		return strings.Join(append([]string{"this node's instance passing"}, parts...), ",")
	}
	if len(parts) == 0 {
		return "all instances passing"
	}
	return strings.Join(parts, ",")
}

// ParseRules reads the rules from a service's tags. Tags it does not know are not its
// business (services carry many); a known tag with a bad value is an error, and so is the same
// rule given twice with different values.
func ParseRules(tags []string) (Rules, error) {
	if err := pythonPhaseOnly(tags); err != nil {
		return Rules{}, err
	}
	r := Rules{MinPassing: -1, MaxFailing: -1}
	for _, tag := range tags {
		key, value, hasValue := strings.Cut(tag, "=")
		key = strings.TrimSpace(key)
		switch key {
		case tagIgnoreMaintenance, tagLocalOnly:
			if hasValue {
				return Rules{}, fmt.Errorf("%w %q: %s takes no value", ErrMalformedTag, tag, key)
			}
			if key == tagLocalOnly {
				r.LocalOnly = true
			} else {
				r.IgnoreMaintenance = true
			}
		case tagMinPassing, tagMaxFailing:
			if !hasValue {
				return Rules{}, fmt.Errorf("%w %q: want %s=N", ErrMalformedTag, tag, key)
			}
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 {
				return Rules{}, fmt.Errorf("%w %q: want %s=N with N a whole number >= 0", ErrMalformedTag, tag, key)
			}
			dst := &r.MinPassing
			if key == tagMaxFailing {
				dst = &r.MaxFailing
			}
			if *dst >= 0 && *dst != n {
				return Rules{}, fmt.Errorf("%w %q: %s is given twice (%d and %d)", ErrMalformedTag, tag, key, *dst, n)
			}
			*dst = n
		}
	}
	if r.LocalOnly && r.Quorum() {
		return Rules{}, fmt.Errorf("%w %s: it cannot go with a quorum rule (%s): one counts this node only, the other all instances", ErrMalformedTag, tagLocalOnly, r.quorumString())
	}
	return r, nil
}

func (r Rules) quorumString() string {
	q := r
	q.IgnoreMaintenance, q.LocalOnly = false, false
	return q.String()
}

// pythonPhaseOnly refuses a service tagged PythonPreboot or PythonPostboot without Tag: the
// Python rebootmgr judged it on one side of the reboot only, which rebootmgr does not do. With
// Tag as well, the Python rebootmgr judged it on both sides, as rebootmgr does.
func pythonPhaseOnly(tags []string) error {
	if slices.Contains(tags, Tag) {
		return nil
	}
	for _, t := range tags {
		side := ""
		switch t {
		case PythonPreboot:
			side = "before"
		case PythonPostboot:
			side = "after"
		default:
			continue
		}
		return fmt.Errorf("%w %q: the Python rebootmgr's tag, whose service gated only the checks %s the reboot; rebootmgr gates by the tag %q, before the reboot and after it alike: add the tag %s (its health then gates both), or remove %s (it then gates nothing)",
			ErrMalformedTag, t, side, Tag, Tag, t)
	}
	return nil
}
