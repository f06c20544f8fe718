package strictjson

import "testing"

func TestObject(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"a":1,"b":"x","c":{"d":[1,{"e":null}]}}`, true},
		{`{}`, true},
		{`{"component":"pipeline","node":"n1","component":"tasks"}`, false},
		{`{"a":{"b":1,"b":2}}`, false},
		{`{"a":[{"b":1,"b":2}]}`, false},
		{`{"a":1}{"b":2}`, false},
		{`{"a":1} x`, false},
		{`[1]`, false},
		{`{"a":`, false},
		{``, false},
	} {
		_, err := Object([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("Object(%s): err %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}
