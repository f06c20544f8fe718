package lock

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Limit
		bad  bool
	}{
		{in: "3", want: Limit{N: 3}},
		{in: " 2\n", want: Limit{N: 2}},
		{in: "auto", want: Limit{Auto: true}},
		{in: "10%", want: Limit{Percent: 10}},
		{in: "100%", want: Limit{Percent: 100}},
		{in: "auto per-zone=1", want: Limit{Auto: true, PerZone: 1}},
		{in: "25% per-zone=2", want: Limit{Percent: 25, PerZone: 2}},
		{in: "0", bad: true},
		{in: "-1", bad: true},
		{in: "0%", bad: true},
		{in: "101%", bad: true},
		{in: "1.5", bad: true},
		{in: "Auto", bad: true},
		{in: "", bad: true},
		{in: "3 per-zone=0", bad: true},
		{in: "3 zone=1", bad: true},
		{in: "3 per-zone=1 x", bad: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLimit(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted as %+v", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			if again, err := ParseLimit(got.String()); err != nil || again != got {
				t.Fatalf("%q does not read back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestPlaces(t *testing.T) {
	for _, tt := range []struct {
		name  string
		l     Limit
		nodes int
		ruled bool
		want  int
	}{
		{"a number", Limit{N: 3}, 100, true, 3},
		{"a share, rounded down", Limit{Percent: 10}, 24, true, 2},
		{"a share of few nodes is at least one", Limit{Percent: 10}, 5, true, 1},
		{"a share of no node known is one", Limit{Percent: 50}, 0, true, 1},
		{"auto, with rules", Limit{Auto: true}, 24, true, math.MaxInt},
		{"auto, no rule to decide by: alone", Limit{Auto: true}, 24, false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.Places(tt.nodes, tt.ruled); got != tt.want {
				t.Fatalf("%d places, want %d", got, tt.want)
			}
		})
	}
}

// TestZones: a group bounded per zone takes holders of one zone at a time, at most PerZone.
func TestZones(t *testing.T) {
	rec := Record{Version: Version}
	l := Limit{Auto: true, PerZone: 2}
	take := func(node, zone string) error {
		t.Helper()
		next, err := rec.AcquireWithin(Holder{Node: node, Zone: zone}, l, 10, true)
		if err == nil {
			rec = next
		}
		return err
	}
	for _, s := range []struct {
		node, zone string
		ok         bool
	}{
		{"a1", "rack-a", true},
		{"b1", "rack-b", false}, // another zone is rebooting
		{"a2", "rack-a", true},
		{"a3", "rack-a", false}, // two per zone
		{"x1", "", false},       // no zone is a zone of its own
		{"a1", "rack-a", true},  // a holder holds
	} {
		err := take(s.node, s.zone)
		if (err == nil) != s.ok || (err != nil && !errors.Is(err, ErrFull)) {
			t.Fatalf("%s of %s: %v, want ok=%v", s.node, s.zone, err, s.ok)
		}
	}
	rec = rec.Release("a1").Release("a2")
	if err := take("b1", "rack-b"); err != nil {
		t.Fatalf("the zone free again: %v", err)
	}
}

// TestZoneLess: under a limit per zone, a node of no zone is a zone of its own, whatever the
// bound per zone: it takes a place only alone, and nobody takes one beside it, of a zone or of
// none; each is told which node has no zone.
func TestZoneLess(t *testing.T) {
	l := Limit{Auto: true, PerZone: 3}
	for _, tt := range []struct {
		name       string
		holders    []Holder
		node, zone string
		zoneLess   string // the node named as having no zone ("": it may take a place)
	}{
		{"alone", nil, "x1", "", ""},
		{"beside another of no zone", []Holder{{Node: "x2"}}, "x1", "", "x2"},
		{"beside a zone", []Holder{{Node: "a1", Zone: "rack-a"}}, "x1", "", "x1"},
		{"a zone beside it", []Holder{{Node: "x2"}}, "a1", "rack-a", "x2"},
		{"a holder holds", []Holder{{Node: "x1"}, {Node: "x2"}}, "x1", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := Record{Version: Version, Holders: tt.holders}
			_, err := rec.AcquireWithin(Holder{Node: tt.node, Zone: tt.zone}, l, 10, true)
			var full *FullError
			switch {
			case tt.zoneLess == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.zoneLess == "":
			case !errors.As(err, &full) || full.ZoneLess != tt.zoneLess || !strings.Contains(err.Error(), tt.zoneLess+" has no zone"):
				t.Fatalf("got %v, want %s named as of no zone", err, tt.zoneLess)
			}
		})
	}
}
