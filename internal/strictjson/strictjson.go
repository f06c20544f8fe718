// Package strictjson decodes JSON as the strictest ingesters do: a key repeated in an object is
// an error, as is anything after the value.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Object decodes data, which must be one JSON object whose objects repeat no key.
func Object(data []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := value(d, "")
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not an object: %T", v)
	}
	return m, nil
}

// value reads the value at path from d.
func value(d *json.Decoder, path string) (any, error) {
	t, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("at %q: %w", path, err)
	}
	switch t {
	case json.Delim('{'):
		return object(d, path)
	case json.Delim('['):
		var out []any
		for i := 0; d.More(); i++ {
			v, err := value(d, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		_, err := d.Token()
		return out, err
	}
	return t, nil
}

// object reads the members of an object whose '{' was read, up to its '}'.
func object(d *json.Decoder, path string) (map[string]any, error) {
	out := map[string]any{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("at %q: %w", path, err)
		}
		key, _ := t.(string)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %q repeated in the object at %q", key, path)
		}
		v, err := value(d, path+"."+key)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	_, err := d.Token()
	return out, err
}
