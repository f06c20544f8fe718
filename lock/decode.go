package lock

// The strict reading of the records: a record rebootmgr cannot fully understand is refused,
// never overwritten or ignored (see Decode).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// strictUnmarshal is json.Unmarshal that refuses unknown fields.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// shape is what a JSON value of the record may hold: for an object, the fields it may have
// (each with its own shape, nil: any value); for a list, the shape of its elements.
type shape struct {
	fields map[string]*shape
	elem   *shape
}

// recordShape is the record's shape, taken from the json tags of Record and Holder so that a
// field added there is known here.
func recordShape() *shape {
	holder := &shape{fields: map[string]*shape{}}
	for _, name := range jsonFields(reflect.TypeFor[Holder]()) {
		holder.fields[name] = nil
	}
	return &shape{fields: map[string]*shape{
		"version": nil,
		"holders": {elem: holder},
	}}
}

// decodeNodeRecord parses a stored record R strictly (see checkShape): a version, a list of
// entries E in field (every field of E, by its json tags), the other top-level fields named,
// nothing else; a version this rebootmgr knows, and every node (node of an entry) named once.
func decodeNodeRecord[R, E any](data []byte, what, field string, others []string, version func(R) int, entries func(R) []E, node func(E) string) (R, error) {
	var zero R
	entry := &shape{fields: map[string]*shape{}}
	for _, name := range jsonFields(reflect.TypeFor[E]()) {
		entry.fields[name] = nil
	}
	top := &shape{fields: map[string]*shape{"version": nil, field: {elem: entry}}}
	for _, name := range others {
		top.fields[name] = nil
	}
	if err := checkShape(data, top); err != nil {
		return zero, fmt.Errorf("not a %s record: %w", what, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r R
	if err := dec.Decode(&r); err != nil {
		return zero, fmt.Errorf("not a %s record: %w", what, err)
	}
	switch v := version(r); {
	case v < 1:
		return zero, fmt.Errorf("not a %s record: version %d", what, v)
	case v > Version:
		return zero, fmt.Errorf("%s record version %d was written by a newer rebootmgr (this one knows %d)", what, v, Version)
	}
	seen := map[string]bool{}
	for _, e := range entries(r) {
		if n := node(e); n == "" || seen[n] {
			return zero, fmt.Errorf("not a %s record: node %q empty or named twice", what, n)
		}
		seen[node(e)] = true
	}
	return r, nil
}

// jsonFields are the names a struct's fields have in JSON.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// checkShape reads data token by token: it must be one JSON object and nothing after it, no
// object in it may give a field twice, and every field must be one the shape s has, spelled as
// Encode spells it.
func checkShape(data []byte, s *shape) error {
	if quickShape(data, s) {
		return nil
	}
	return walkShape(data, s)
}

// walkShape is checkShape token by token, with the error it finds.
func walkShape(data []byte, s *shape) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return errors.New("empty value")
	}
	if err != nil {
		return syntax("", err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("want a JSON object, found %s", describe(tok))
	}
	if err := walkObject(dec, "", s, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the record")
	}
	return nil
}

// maxDepth bounds how deeply the values of a record may nest; a record nests three deep.
const maxDepth = 10

// walkValue reads one value whose first token is tok, at path and depth.
func walkValue(dec *json.Decoder, tok json.Token, path string, s *shape, depth int) error {
	if tok == json.Delim('{') || tok == json.Delim('[') {
		if depth++; depth > maxDepth {
			return fmt.Errorf("%svalues nested more than %d deep", inPath(path), maxDepth)
		}
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, path, s, depth)
	case json.Delim('['):
		var elem *shape
		if s != nil {
			elem = s.elem
		}
		for i := 0; dec.More(); i++ {
			t, err := dec.Token()
			if err != nil {
				return syntax(path, err)
			}
			if err := walkValue(dec, t, fmt.Sprintf("%s[%d]", path, i), elem, depth); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return syntax(path, err)
		}
	}
	return nil
}

// walkObject reads the rest of an object whose '{' was read, at path and depth.
func walkObject(dec *json.Decoder, path string, s *shape, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return syntax(path, err)
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("%sfield %q appears twice", inPath(path), key)
		}
		seen[key] = true
		var field *shape
		if s != nil && s.fields != nil {
			f, ok := s.fields[key]
			if !ok {
				return fmt.Errorf("%sunknown field %q (known: %s)", inPath(path), key, strings.Join(slices.Sorted(maps.Keys(s.fields)), ", "))
			}
			field = f
		}
		child := key
		if path != "" {
			child = path + "." + key
		}
		t, err = dec.Token()
		if err != nil {
			return syntax(child, err)
		}
		if err := walkValue(dec, t, child, field, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return syntax(path, err)
	}
	return nil
}

// inPath names a place in the record at the start of an error ("" at the top).
func inPath(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// syntax is a JSON syntax error met at path.
func syntax(path string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%sthe value ends early (truncated?)", inPath(path))
	}
	return fmt.Errorf("%s%w", inPath(path), err)
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}
