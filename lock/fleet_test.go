package lock

import (
	"strings"
	"testing"
)

func TestDecodeFleet(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		// err is part of the error wanted ("" for none).
		err  string
		want map[string]string
	}{
		{"empty fleet", `{"version":1,"holders":{}}`, "", map[string]string{}},
		{"two holders", `{"version":1,"holders":{"n1":"default","n2":"compute"}}`, "", map[string]string{"n1": "default", "n2": "compute"}},
		{"a node twice", `{"version":1,"holders":{"n1":"default","n1":"compute"}}`, `field "n1" appears twice`, nil},
		{"holders twice", `{"version":1,"holders":{"n1":"a"},"holders":{}}`, `field "holders" appears twice`, nil},
		{"a typo", `{"version":1,"holder":{}}`, `unknown field "holder"`, nil},
		{"no holders", `{"version":1}`, "holders missing", nil},
		{"null holders", `{"version":1,"holders":null}`, "holders missing", nil},
		{"trailing data", `{"version":1,"holders":{}} x`, "trailing data", nil},
		{"empty group", `{"version":1,"holders":{"n1":""}}`, "empty name", nil},
		{"newer version", `{"version":2,"holders":{}}`, "newer rebootmgr", nil},
		{"not an object", `[]`, "want a JSON object", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeFleet([]byte(tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("DecodeFleet(%s) = %v, %v; want an error with %q", tt.data, f, err, tt.err)
				}
				return
			}
			if err != nil || len(f.Holders) != len(tt.want) {
				t.Fatalf("DecodeFleet(%s) = %v, %v", tt.data, f, err)
			}
			for n, g := range tt.want {
				if f.Holders[n] != g {
					t.Fatalf("DecodeFleet(%s): %s in %q, want %q", tt.data, n, f.Holders[n], g)
				}
			}
		})
	}
}

// TestFleetRoundTrip: what Encode writes, DecodeFleet reads back; With and Without leave the
// record they are called on as it was.
func TestFleetRoundTrip(t *testing.T) {
	base := Fleet{}.With("n1", "default")
	f := base.With("n2", "compute").Without("n1", "default").Without("n2", "other")
	if _, ok := base.Group("n2"); ok {
		t.Fatal("With changed the record it was called on")
	}
	data, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeFleet(data)
	if err != nil || len(back.Holders) != 1 || back.Holders["n2"] != "compute" {
		t.Fatalf("round trip of %s: %v, %v", data, back, err)
	}
	if got := (Fleet{}).Nodes(); len(got) != 0 {
		t.Fatalf("Nodes of an empty fleet: %v", got)
	}
}
