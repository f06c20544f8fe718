package store

import (
	"fmt"
	"strings"
	"unicode"
)

// MaxNameLength bounds a node or group name: the longest DNS name.
const MaxNameLength = 253

// ValidNode checks a node's name before it goes into a key. Consul takes almost any node name
// (it only warns that names outside letters, digits and '-' cannot be looked up in DNS), but a
// name becomes a segment of a key path, and Consul cleans key paths: "x/../n2" is "n2", and ".."
// climbs out of the node's keys. So a node name here is what a host name is: letters, digits,
// '-', '_' and '.', at most MaxNameLength long, and never "." or "..".
func ValidNode(name string) error { return validName("node", name) }

// ValidService checks a service's name before it goes into a key, by the same rule as a node
// name (Consul's own rule for names it can serve in DNS).
func ValidService(name string) error { return validName("service", name) }

// ValidGroup checks a group name, by the same rule as a node name.
func ValidGroup(name string) error { return validName("group", name) }

func validName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty %s name", kind)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%s name %.20q... is %d characters long, more than %d", kind, name, len(name), MaxNameLength)
	case name == "." || name == "..":
		return fmt.Errorf(`%s name %q: "." and ".." are not names, Consul reads them as steps in the key path`, kind, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%s name %q: only letters, digits, '-', '_' and '.' (not %q)", kind, name, r)
		}
	}
	return nil
}

// CheckKey refuses a key that Consul would not keep as it is written: Consul cleans key paths,
// so that an empty, "." or ".." segment reads or writes another key ("a/../b" is "b"), and a
// control character fails the request. Every key the store reads or writes by name is checked,
// so that a name that was not validated fails here instead of reaching another key.
func CheckKey(key string) error {
	for _, seg := range strings.Split(strings.TrimPrefix(key, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("key %q: an empty, '.' or '..' step, which Consul would clean into another key: nothing read or written", key)
		}
	}
	if strings.IndexFunc(key, unicode.IsControl) >= 0 {
		return fmt.Errorf("key %q: a control character: nothing read or written", key)
	}
	return nil
}
