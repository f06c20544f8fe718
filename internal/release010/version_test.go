package release010_test

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/release010"
	"github.com/rebootmgr/rebootmgr/lock"
)

// TestNewFieldRaisesVersion is the rule for a record rebootmgr 0.1.0 reads too (docs/design.md: A record
// the previous release reads): a field this version writes that 0.1.0 does not know raises the
// record's version, so that 0.1.0 says it was written by a newer rebootmgr, rather than that it
// is not a record at all (its decoders refuse a field they do not know), and never rewrites it
// without that field. Such a record is written only once every node runs a version that reads
// it; a field that must be written before then goes in a key of its own, which 0.1.0 never reads.
func TestNewFieldRaisesVersion(t *testing.T) {
	records := []struct {
		name           string
		today, release reflect.Type
		encode         func() ([]byte, error)
		decode         func([]byte) (any, error)
		// newer is what 0.1.0 says of a record of a higher version.
		newer string
	}{
		{"lock", reflect.TypeFor[lock.Record](), reflect.TypeFor[release010.Record](), lock.Record{}.Encode, decodeLock, "was written by a newer rebootmgr"},
		{"queue", reflect.TypeFor[lock.Queue](), reflect.TypeFor[release010.Queue](), lock.Queue{}.Encode, decodeQueue, "was written by a newer rebootmgr"},
		{"fleet", reflect.TypeFor[lock.Fleet](), reflect.TypeFor[release010.Fleet](), lock.Fleet{}.Encode, decodeFleet, "was written by a newer rebootmgr"},
		{"history", reflect.TypeFor[history.Log](), reflect.TypeFor[release010.Log](), history.Log{}.Encode, decodeHistory, "is not known to this rebootmgr"},
	}
	for _, r := range records {
		t.Run(r.name, func(t *testing.T) {
			data, err := r.encode()
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]json.RawMessage
			var version int
			if err := json.Unmarshal(data, &top); err != nil || json.Unmarshal(top["version"], &version) != nil {
				t.Fatalf("%s record written without a version: %s", r.name, data)
			}
			known := fieldPaths(r.release, "")
			var unknown []string
			for _, f := range fieldPaths(r.today, "") {
				if !slices.Contains(known, f) {
					unknown = append(unknown, f)
				}
			}
			if len(unknown) > 0 && version <= release010.Version {
				t.Errorf("the %s record has fields rebootmgr 0.1.0 does not know (%s) and is still written as version %d, which 0.1.0 reads: it refuses every record that carries them as unreadable. Raise the record's version (0.1.0 then says a newer rebootmgr wrote it) and write such records only once every node reads them, or put the field in a key of its own",
					r.name, strings.Join(unknown, ", "), version)
			}
			// What 0.1.0 says of a version it does not know.
			top["version"] = json.RawMessage(fmt.Sprint(max(version, release010.Version) + 1))
			higher, _ := json.Marshal(top)
			if _, err := r.decode(higher); err == nil || !strings.Contains(err.Error(), r.newer) {
				t.Errorf("rebootmgr 0.1.0 on a %s record of a higher version: %v, want %q", r.name, err, r.newer)
			}
		})
	}
}

// fieldPaths are the names, as JSON writes them, of every field of a value of type t and of
// the values it holds ("holders[].zone"); a value that encodes itself (a time) has none.
func fieldPaths(t reflect.Type, prefix string) []string {
	if t.Implements(reflect.TypeFor[json.Marshaler]()) || t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return fieldPaths(t.Elem(), prefix+"[]")
	case reflect.Map:
		return fieldPaths(t.Elem(), prefix+"{}")
	case reflect.Struct:
	default:
		return nil
	}
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		out = append(out, path)
		out = append(out, fieldPaths(f.Type, path)...)
	}
	return out
}
