package fleet

import (
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/store"
)

// PythonGroupUnknown is Node.Python for a node of the Python rebootmgr whose group no key
// names.
const PythonGroupUnknown = "unknown"

// takePython takes in the Python rebootmgr's marks (see store/python.go), pairs of its nodes'
// configs (nodes/<node>/config) and groups' stop flags (<group>_stop): each holds as
// rebootmgr's own where that is not set, and a config's group is kept.
func (r Reader) takePython(s *Snapshot, pairs []*api.KVPair, group func(string) GroupState) {
	for _, p := range pairs {
		rest := strings.TrimPrefix(p.Key, r.Keys.Prefix+"/")
		if name, ok := strings.CutSuffix(rest, "_stop"); ok {
			if g := group(name); g.Stop == nil {
				g.Stop = &Mark{Value: "(the Python rebootmgr's " + p.Key + ") " + string(p.Value)}
				s.Groups[name] = g
			}
			continue
		}
		node := strings.Split(rest, "/")[1]
		s.Python[node] = store.PythonGroup(p.Value)
		if _, ok := s.Disabled[node]; ok {
			continue
		}
		if reason, disabled := store.PythonDisabled(p.Value); disabled {
			s.Disabled[node] = Mark{Value: "the Python rebootmgr's config " + p.Key + " " + reason}
		}
	}
}

// pythonGroupOf is the group the Python rebootmgr's keys give node: its config's "group",
// else the group of a Python marker that names it ("" when neither does).
func (s Snapshot) pythonGroupOf(node string) string {
	if g := s.Python[node]; g != "" {
		return g
	}
	for name, g := range s.Groups {
		for key, n := range g.Legacy {
			if n == node && !strings.HasSuffix(key, "/.lock") {
				return name
			}
		}
	}
	return ""
}
