package lock

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
)

func TestAcquire(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := func(name string) Holder { return Holder{Node: name, Phase: Preparing, Since: t0} }
	tests := []struct {
		name    string
		holders []Holder
		add     string
		limit   int
		want    []string
		wantErr error
	}{
		{name: "empty", add: "n1", limit: 1, want: []string{"n1"}},
		{name: "full", holders: []Holder{n("n2")}, add: "n1", limit: 1, want: []string{"n2"}, wantErr: ErrFull},
		{name: "already holder", holders: []Holder{n("n1")}, add: "n1", limit: 1, want: []string{"n1"}},
		{name: "room for two", holders: []Holder{n("n2")}, add: "n1", limit: 2, want: []string{"n2", "n1"}},
		{name: "over a lowered limit", holders: []Holder{n("n2"), n("n3")}, add: "n1", limit: 1, want: []string{"n2", "n3"}, wantErr: ErrFull},
		{name: "bad limit", add: "n1", limit: 0, want: nil, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Record{Version: Version, Holders: tt.holders}
			got, err := r.Acquire(n(tt.add), tt.limit)
			switch {
			case tt.wantErr == errAny && err == nil:
				t.Fatalf("want an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			}
			if names := nodes(got); !slices.Equal(names, tt.want) {
				t.Fatalf("holders = %v, want %v", names, tt.want)
			}
			if len(r.Holders) != len(tt.holders) {
				t.Fatalf("Acquire changed its receiver")
			}
		})
	}
}

var errAny = errors.New("any error")

func TestUpdateRelease(t *testing.T) {
	r := Record{Version: Version, Holders: []Holder{{Node: "n1", Phase: Preparing}, {Node: "n2", Phase: Rebooting}}}
	got, err := r.Update(Holder{Node: "n1", Phase: Rebooting, BootID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := got.Holder("n1"); h.Phase != Rebooting || h.BootID != "b" {
		t.Fatalf("updated holder = %+v", h)
	}
	if h, _ := r.Holder("n1"); h.Phase != Preparing {
		t.Fatalf("Update changed its receiver")
	}
	if _, err := r.Update(Holder{Node: "n3"}); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("update of a non-holder: err = %v", err)
	}
	if got := nodes(r.Release("n1")); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("release: %v", got)
	}
	if got := nodes(r.Release("n9")); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("release of a non-holder: %v", got)
	}
}

func TestDecode(t *testing.T) {
	const n1 = `{"node":"n1","phase":"rebooting","since":"2026-01-02T03:04:05Z","updated":"2026-01-02T03:04:05Z","boot_id":"x"}`
	tests := []struct {
		name string
		data string
		// wantErr: what the error must mention ("" means the record is valid).
		wantErr string
	}{
		{"round trip", `{"version":1,"holders":[` + n1 + `]}`, ""},
		{"no holders", `{"version":1,"holders":[]}`, ""},
		{"fields in another order", `{"holders":[],"version":1}`, ""},
		{"whitespace around", " \n{\"version\":1,\"holders\":[]}\n\t ", ""},
		{"holder with node and phase alone", `{"version":1,"holders":[{"phase":"preparing","node":"n1"}]}`, ""},
		{"empty value", ``, "empty value"},
		{"not json", `n1`, "invalid character"},
		{"truncated", `{"version":1,"holders":[` + n1, "holders"},
		{"a list", `[]`, "want a JSON object"},
		{"null", `null`, "want a JSON object"},
		{"a string", `"free"`, "want a JSON object"},
		{"trailing data", `{"version":1,"holders":[]} x`, "trailing data"},
		{"a second record", `{"version":1,"holders":[]}{"version":1,"holders":[` + n1 + `]}`, "trailing data"},
		{"trailing bracket", `{"version":1,"holders":[]}]`, "trailing data"},
		{"no version", `{"holders":[]}`, `no "version" field`},
		{"null version", `{"version":null,"holders":[]}`, "version 0"},
		{"version as a string", `{"version":"1","holders":[]}`, `"version"`},
		{"fractional version", `{"version":1.5,"holders":[]}`, `"version"`},
		{"newer version", `{"version":2,"holders":[]}`, "newer rebootmgr"},
		{"no holders field", `{"version":1}`, `no "holders" field`},
		{"empty object", `{}`, `no "version" field`},
		{"null holders", `{"version":1,"holders":null}`, `"holders" is null`},
		{"holders an object", `{"version":1,"holders":{}}`, `"holders"`},
		{"holders a string", `{"version":1,"holders":"n1"}`, `"holders"`},
		{"typo in holders", `{"version":1,"holder":[` + n1 + `]}`, `unknown field "holder"`},
		{"typo beside holders", `{"version":1,"holders":[],"holder":[` + n1 + `]}`, `unknown field "holder"`},
		{"holders in capitals", `{"version":1,"Holders":[` + n1 + `]}`, `unknown field "Holders"`},
		{"capitals beside holders", `{"version":1,"Holders":[` + n1 + `],"holders":[]}`, `unknown field "Holders"`},
		{"unknown field in a holder", `{"version":1,"holders":[{"node":"n1","phase":"rebooting","boot-id":"x"}]}`, `holders[0]: unknown field "boot-id"`},
		{"unknown field in the second holder", `{"version":1,"holders":[` + n1 + `,{"node":"n2","phase":"preparing","deadLine":"x"}]}`, `holders[1]: unknown field "deadLine"`},
		{"node in capitals", `{"version":1,"holders":[{"Node":"n1","phase":"rebooting"}]}`, `unknown field "Node"`},
		{"a field folded by unicode case", `{"version":1,"holders":[{"node":"n1","phase":"rebooting","ſince":"2026-01-02T03:04:05Z"}]}`, `unknown field "ſince"`},
		{"holders twice, the last full", `{"version":1,"holders":[],"holders":[` + n1 + `]}`, `field "holders" appears twice`},
		{"holders twice, the last empty", `{"version":1,"holders":[` + n1 + `],"holders":[]}`, `field "holders" appears twice`},
		{"holders twice, spelled with an escape", `{"version":1,"holders":[` + n1 + `],"hold\u0065rs":[]}`, `field "holders" appears twice`},
		{"version twice", `{"version":1,"version":1,"holders":[]}`, `field "version" appears twice`},
		{"node twice in a holder", `{"version":1,"holders":[{"node":"n1","phase":"rebooting","node":"n2"}]}`, `holders[0]: field "node" appears twice`},
		{"phase twice in a holder", `{"version":1,"holders":[{"node":"n1","phase":"rebooting","phase":"preparing"}]}`, `holders[0]: field "phase" appears twice`},
		{"unknown phase", `{"version":1,"holders":[{"node":"n1","phase":"dancing"}]}`, "unknown phase"},
		{"holder without node", `{"version":1,"holders":[{"phase":"preparing"}]}`, "has no node"},
		{"null holder", `{"version":1,"holders":[null]}`, "has no node"},
		{"holder a string", `{"version":1,"holders":["n1"]}`, `"holders"`},
		{"nested deep in a holder", `{"version":1,"holders":[{"node":"n1","phase":"rebooting","since":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}]}`, "nested more than"},
		{"holder twice", `{"version":1,"holders":[{"node":"n1","phase":"preparing"},{"node":"n1","phase":"preparing"}]}`, "names n1 twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decode([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Decode(%q) = %+v, want an error mentioning %q", tt.data, r, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode(%q) err = %q, want it to mention %q", tt.data, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%q) err = %v", tt.data, err)
			}
			enc, err := r.Encode()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Decode(enc)
			if err != nil {
				t.Fatalf("decode of encoded %s: %v", enc, err)
			}
			if !slices.Equal(nodes(again), nodes(r)) {
				t.Fatalf("round trip lost holders: %s", enc)
			}
		})
	}
}

// TestDecodeWhatEncodeWrites: every field Encode writes, the optional ones included, is one
// Decode knows.
func TestDecodeWhatEncodeWrites(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	full := Holder{
		Node: "n1", Phase: Rebooting, Since: t0, Updated: t0.Add(time.Minute),
		BootID: "b1", RebootStarted: t0.Add(2 * time.Minute), TriggerIndex: 42,
		Deadline: t0.Add(time.Hour), TriggeredBy: "key service/rebootmgr/n1/reboot_required",
	}
	tests := []struct {
		name string
		rec  Record
	}{
		{"no holders", Record{}},
		{"a bare holder", Record{Holders: []Holder{{Node: "n1", Phase: Preparing}}}},
		{"every field set", Record{Holders: []Holder{full}}},
		{"several holders", Record{Holders: []Holder{full, {Node: "n2", Phase: Finishing, Since: t0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := tt.rec.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(enc)
			if err != nil {
				t.Fatalf("Decode(%s): %v", enc, err)
			}
			want := tt.rec
			want.Version = Version
			if want.Holders == nil {
				want.Holders = []Holder{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip of %s:\ngot  %+v\nwant %+v", enc, got, want)
			}
		})
	}
}

func TestFullErrorNamesHolders(t *testing.T) {
	_, err := Record{Version: Version, Holders: []Holder{{Node: "n7", Phase: Rebooting}}}.Acquire(Holder{Node: "n1"}, 1)
	var full *FullError
	if !errors.As(err, &full) || full.Holders[0].Node != "n7" {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "n7") || !strings.Contains(msg, "rebooting") {
		t.Fatalf("message does not name the holder: %q", msg)
	}
}

func nodes(r Record) []string {
	var out []string
	for _, h := range r.Holders {
		out = append(out, h.Node)
	}
	return out
}

func TestDeadlines(t *testing.T) {
	t0 := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC) // the night clocks change in Europe: deadlines are instants
	rec := Record{Version: Version, Holders: []Holder{
		{Node: "a", Phase: Rebooting, Deadline: t0.Add(30 * time.Minute)},
		{Node: "b", Phase: Finishing, Deadline: t0.Add(10 * time.Minute)},
		{Node: "c", Phase: Preparing},
	}}
	tests := []struct {
		name    string
		now     time.Time
		overdue []string
		next    time.Time
	}{
		{"all within", t0, nil, t0.Add(10 * time.Minute)},
		{"at the deadline is still within", t0.Add(10 * time.Minute), nil, t0.Add(10 * time.Minute)},
		{"one past", t0.Add(10*time.Minute + time.Second), []string{"b"}, t0.Add(30 * time.Minute)},
		{"both past", t0.Add(time.Hour), []string{"a", "b"}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, h := range rec.Overdue(tt.now, nil) {
				got = append(got, h.Node)
			}
			if !slices.Equal(got, tt.overdue) {
				t.Fatalf("Overdue = %v, want %v", got, tt.overdue)
			}
			if next := rec.NextDeadline(tt.now, nil); !next.Equal(tt.next) {
				t.Fatalf("NextDeadline = %v, want %v", next, tt.next)
			}
		})
	}
}

func TestEncodeCutsTriggeredBy(t *testing.T) {
	long := strings.Repeat("kernel ", 100<<10)
	tests := []struct {
		name, triggeredBy string
		cut               bool
	}{
		{"none", "", false},
		{"short", "file /var/run/reboot-required", false},
		{"600 kB", long, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Record{Version: Version, Holders: []Holder{{Node: "n1", Phase: Preparing, TriggeredBy: tt.triggeredBy}}}
			data, err := r.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			got := back.Holders[0].TriggeredBy
			if tt.cut != (got != tt.triggeredBy) || len(got) > clip.Max {
				t.Fatalf("stored %d bytes of %d", len(got), len(tt.triggeredBy))
			}
			if r.Holders[0].TriggeredBy != tt.triggeredBy {
				t.Fatal("Encode changed its receiver")
			}
		})
	}
}
