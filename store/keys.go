package store

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/rebootmgr/rebootmgr/lock"
)

// DefaultPrefix is where rebootmgr keeps its keys.
const DefaultPrefix = "service/rebootmgr"

// Keys is the layout of rebootmgr's keys under a prefix: its methods build the keys, and Parse
// reads a key back into what it is the key of. Its methods put names into keys as they are
// given: a name must have passed ValidNode or ValidGroup. The store checks again before it reads
// or writes (a node's name with ValidNode, any key with CheckKey), so that a name that slipped
// through fails rather than reaching the key Consul would clean it into.
//
// An empty Prefix lays the keys out from the root ("stop", "groups/compute/lock"): rebootmgr's
// own prefix is never empty (CheckKey refuses it), the in-memory store of its tests keeps its
// keys so.
type Keys struct{ Prefix string }

// at is the key rel under the prefix.
func (k Keys) at(rel string) string {
	if k.Prefix == "" {
		return rel
	}
	return k.Prefix + "/" + rel
}

// Stop is the fleet's stop flag: while it exists (any value), nothing starts.
func (k Keys) Stop() string { return k.at("stop") }

// Lock is the reboot lock record of the default group.
func (k Keys) Lock() string { return k.at("lock") }

// DefaultGroup is the group of the nodes that name none: the whole fleet.
const DefaultGroup = lock.DefaultGroup

func groupName(group string) string {
	if group == "" {
		return DefaultGroup
	}
	return group
}

// GroupLock is the reboot lock record of a group; the default group's is Lock.
func (k Keys) GroupLock(group string) string {
	if groupName(group) == DefaultGroup {
		return k.Lock()
	}
	return k.GroupPrefix(group) + "lock"
}

// GroupStop is a group's stop flag, beside the fleet's.
func (k Keys) GroupStop(group string) string { return k.GroupPrefix(group) + "stop" }

// GroupLimit holds how many nodes of a group may hold its lock at once (1 when absent).
func (k Keys) GroupLimit(group string) string { return k.GroupPrefix(group) + "limit" }

// GroupQueue is the order in which the group's nodes asked for its lock (see lock.Queue).
func (k Keys) GroupQueue(group string) string { return k.GroupPrefix(group) + "queue" }

// GroupAsks is the prefix of the group's asks (see GroupAsk).
func (k Keys) GroupAsks(group string) string { return k.GroupPrefix(group) + "asks/" }

// GroupAsk is node's entry in the group's queue kept in a key of its own (see lock.Ask): a node
// joining the queue creates it, and the next write of the queue's record folds it in. A name
// that could not be a key's segment is escaped as a member's (see Member).
func (k Keys) GroupAsk(group, node string) string { return k.GroupAsks(group) + memberSegment(node) }

// GroupTurns is the prefix of the group's turn keys (see GroupTurn).
func (k Keys) GroupTurns(group string) string { return k.GroupPrefix(group) + "turn/" }

// GroupTurn is where a node waiting in the group's queue hears that a place opened for it (see
// place.Woken): its value is why and when (see TurnValue).
func (k Keys) GroupTurn(group, node string) string { return k.GroupTurns(group) + node }

// GroupHistory is a group's bounded record of reboots.
func (k Keys) GroupHistory(group string) string { return k.GroupPrefix(group) + "history" }

// GroupsPrefix is the prefix under which every group's keys live (see GroupPrefix).
func (k Keys) GroupsPrefix() string { return k.at("groups/") }

// GroupPrefix is the prefix under which every key of group lives (lock, limit, stop, history).
func (k Keys) GroupPrefix(group string) string {
	return k.GroupsPrefix() + groupName(group) + "/"
}

// Disabled is a node's disabled mark; its value is the reason.
func (k Keys) Disabled(node string) string { return k.at(node + "/disabled") }

// RebootRequired is a node's reboot request.
func (k Keys) RebootRequired(node string) string { return k.at(node + "/reboot_required") }

// Holders is the fleet's record of every node holding a place in any group's lock.
func (k Keys) Holders() string { return k.at("holders") }

// Claims is the fleet's record of the nodes waiting for room that go first (see lock.Claims).
func (k Keys) Claims() string { return k.at("claims") }

// LegacyKeys are the keys through which the Python rebootmgr holds a lock for group: its
// session locks (lock/.lock fleet-wide, <group>_lock/.lock in a group) and its markers
// (reboot_in_progress, <group>_reboot_in_progress), the default group's included, since a
// Python node given --group default writes those.
func (k Keys) LegacyKeys(group string) []string {
	return []string{k.LegacySession(), k.LegacyMarker(), k.LegacyGroupSession(group), k.LegacyGroupMarker(group)}
}

// LegacySession is the key a Python node of no group locks with a session: lock/.lock.
func (k Keys) LegacySession() string { return k.at("lock/.lock") }

// LegacyGroupSession is the key a Python node of group locks with a session:
// <group>_lock/.lock (default_lock/.lock for the default group).
func (k Keys) LegacyGroupSession(group string) string {
	return k.at(groupName(group) + "_lock/.lock")
}

// LegacyMarker is the key in which a Python node of no group marks its reboot in progress
// with its name: reboot_in_progress. rebootmgr writes its own there too (see MarkerValue).
func (k Keys) LegacyMarker() string { return k.at("reboot_in_progress") }

// LegacyGroupMarker is LegacyMarker for a Python node of group: <group>_reboot_in_progress
// (default_reboot_in_progress for the default group).
func (k Keys) LegacyGroupMarker(group string) string {
	return k.at(groupName(group) + "_reboot_in_progress")
}

// MembersPrefix holds, for each service tagged rebootmgr, a key for every node seen running it:
// members/<service>/<node>. A member with no instance in the catalog counts as failing until it
// is forgotten.
func (k Keys) MembersPrefix() string { return k.at("members/") }

// Member is the key that remembers node running service. Consul takes node names that could
// not be a key's segment as they are (a space, a '/', ".."): such a name is written escaped
// (see memberSegment), so that every node Consul knows can be remembered.
func (k Keys) Member(service, node string) string {
	return k.MembersPrefix() + service + "/" + memberSegment(node)
}

// memberSegment is node as a key segment: itself when it is a valid node name, else every byte
// but letters, digits, '-' and '_' as %XX (dots too, so that no segment is "." or "..").
func memberSegment(node string) string {
	if ValidNode(node) == nil {
		return node
	}
	var b strings.Builder
	for i := 0; i < len(node); i++ {
		c := node[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// PythonConfig is node's config in the Python rebootmgr: nodes/<node>/config, a JSON object
// whose "enabled" says whether the node may reboot ("message" why not), and whose "group" is
// its group when it is given no --group.
func (k Keys) PythonConfig(node string) string { return k.at("nodes/" + node + "/config") }

// PythonGroupStop is the Python rebootmgr's stop flag of group: <group>_stop
// (default_stop for a Python node given --group default).
func (k Keys) PythonGroupStop(group string) string { return k.at(groupName(group) + "_stop") }

// Kind is what a key of rebootmgr's is the key of (see Keys.Parse).
type Kind int

// The kinds of keys; the names a Key carries with each are in parentheses.
const (
	// KindStop is the fleet's stop flag (Keys.Stop).
	KindStop Kind = iota + 1
	// KindHolders and KindClaims are the fleet's records (Keys.Holders, Keys.Claims).
	KindHolders
	KindClaims
	// KindLock is a group's lock record (Group; the default group's is Keys.Lock).
	KindLock
	// KindGroupStop, KindLimit, KindQueue and KindHistory are a group's other keys (Group).
	KindGroupStop
	KindLimit
	KindQueue
	KindHistory
	// KindTurn is a node's turn key in its group's queue (Group, Node).
	KindTurn
	// KindAsk is a node's entry in its group's queue in a key of its own (Group, Node).
	KindAsk
	// KindDisabled and KindRebootRequired are a node's marks (Node).
	KindDisabled
	KindRebootRequired
	// KindMember remembers a node running a service (Service, Node).
	KindMember
	// KindPythonConfig is a node's config in the Python rebootmgr (Node).
	KindPythonConfig
	// KindPythonStop is the Python rebootmgr's stop flag of a group (Group).
	KindPythonStop
	// KindPythonSession and KindPythonMarker are the Python rebootmgr's session lock and
	// reboot-in-progress marker: of a group (Group), or, with Group "", of no group
	// (Keys.LegacySession, Keys.LegacyMarker).
	KindPythonSession
	KindPythonMarker
)

// Key is one of rebootmgr's keys as Keys.Parse reads it: its kind, and the names in it.
type Key struct {
	Kind    Kind
	Group   string
	Node    string
	Service string
}

// Of is the key k names (Key.Kind builds it, with its names); "" for no kind.
func (k Keys) Of(key Key) string {
	switch key.Kind {
	case KindStop:
		return k.Stop()
	case KindHolders:
		return k.Holders()
	case KindClaims:
		return k.Claims()
	case KindLock:
		return k.GroupLock(key.Group)
	case KindGroupStop:
		return k.GroupStop(key.Group)
	case KindLimit:
		return k.GroupLimit(key.Group)
	case KindQueue:
		return k.GroupQueue(key.Group)
	case KindHistory:
		return k.GroupHistory(key.Group)
	case KindTurn:
		return k.GroupTurn(key.Group, key.Node)
	case KindAsk:
		return k.GroupAsk(key.Group, key.Node)
	}
	return k.ofNode(key)
}

// ofNode is Of for the kinds of a node's and the Python rebootmgr's keys.
func (k Keys) ofNode(key Key) string {
	switch key.Kind {
	case KindDisabled:
		return k.Disabled(key.Node)
	case KindRebootRequired:
		return k.RebootRequired(key.Node)
	case KindMember:
		return k.Member(key.Service, key.Node)
	case KindPythonConfig:
		return k.PythonConfig(key.Node)
	case KindPythonStop:
		return k.PythonGroupStop(key.Group)
	case KindPythonSession:
		if key.Group == "" {
			return k.LegacySession()
		}
		return k.LegacyGroupSession(key.Group)
	case KindPythonMarker:
		if key.Group == "" {
			return k.LegacyMarker()
		}
		return k.LegacyGroupMarker(key.Group)
	}
	return ""
}

// Parse reads key back into what it is the key of: the key that Of builds from what it
// returns, and false for any other key (another program's, a group's key of the default
// group under groups/, which its builder never makes, an empty name). A member's node is read
// unescaped (see Member).
func (k Keys) Parse(key string) (Key, bool) {
	rest, ok := strings.CutPrefix(key, k.at(""))
	if !ok || rest == "" {
		return Key{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) == 3 && parts[0] == "members" || len(parts) == 4 && parts[0] == "groups" && parts[2] == "asks" {
		node, err := url.PathUnescape(parts[len(parts)-1])
		if err != nil {
			return Key{}, false
		}
		parts[len(parts)-1] = node
	}
	if slices.Contains(parts, "") {
		return Key{}, false
	}
	var out Key
	switch len(parts) {
	case 1:
		out = parseTop(parts[0])
	case 2:
		out = parseTwo(parts[0], parts[1])
	case 3:
		out = parseThree(parts[0], parts[1], parts[2])
	case 4:
		if kind := map[string]Kind{"turn": KindTurn, "asks": KindAsk}[parts[2]]; parts[0] == "groups" && kind != 0 {
			out = Key{Kind: kind, Group: parts[1], Node: parts[3]}
		}
	}
	if out.Kind == 0 || k.Of(out) != key {
		return Key{}, false
	}
	return out, true
}

// parseTop reads a key of one segment: the fleet's, or the Python rebootmgr's.
func parseTop(name string) Key {
	switch name {
	case "stop":
		return Key{Kind: KindStop}
	case "lock":
		return Key{Kind: KindLock, Group: DefaultGroup}
	case "holders":
		return Key{Kind: KindHolders}
	case "claims":
		return Key{Kind: KindClaims}
	case "reboot_in_progress":
		return Key{Kind: KindPythonMarker}
	}
	if g, ok := strings.CutSuffix(name, "_reboot_in_progress"); ok {
		return Key{Kind: KindPythonMarker, Group: g}
	}
	if g, ok := strings.CutSuffix(name, "_stop"); ok {
		return Key{Kind: KindPythonStop, Group: g}
	}
	return Key{}
}

// parseTwo reads a key of two segments: a node's mark, or a Python session lock.
func parseTwo(first, second string) Key {
	switch {
	case second == "disabled":
		return Key{Kind: KindDisabled, Node: first}
	case second == "reboot_required":
		return Key{Kind: KindRebootRequired, Node: first}
	case second == ".lock" && first == "lock":
		return Key{Kind: KindPythonSession}
	case second == ".lock" && strings.HasSuffix(first, "_lock"):
		return Key{Kind: KindPythonSession, Group: strings.TrimSuffix(first, "_lock")}
	}
	return Key{}
}

// groupKind is the kind of a group's key under groups/<group>/ by its last segment (0: none).
func groupKind(last string) Kind {
	switch last {
	case "lock":
		return KindLock
	case "stop":
		return KindGroupStop
	case "limit":
		return KindLimit
	case "queue":
		return KindQueue
	case "history":
		return KindHistory
	}
	return 0
}

// parseThree reads a key of three segments: a group's, a member's, or a Python config.
func parseThree(first, second, third string) Key {
	switch first {
	case "groups":
		if kind := groupKind(third); kind != 0 {
			return Key{Kind: kind, Group: second}
		}
	case "members":
		return Key{Kind: KindMember, Service: second, Node: third}
	case "nodes":
		if third == "config" {
			return Key{Kind: KindPythonConfig, Node: second}
		}
	}
	return Key{}
}
