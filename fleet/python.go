package fleet

import "strings"

// PythonGroupUnknown is Node.Python for a node of the Python rebootmgr whose group no key
// names.
const PythonGroupUnknown = "unknown"

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
