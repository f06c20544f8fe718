package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		cut  bool
	}{
		{"empty", "", false},
		{"short", "disk replacement, ticket 4711", false},
		{"exactly the bound", strings.Repeat("x", Max), false},
		{"one byte over", strings.Repeat("x", Max+1), true},
		{"600 kB", strings.Repeat("y", 600<<10), true},
		{"two-byte characters", strings.Repeat("é", Max), true},
		{"three-byte characters", strings.Repeat("€", Max), true},
		{"four-byte characters, shifted by one", "a" + strings.Repeat("😀", Max), true},
		{"four-byte characters, shifted by two", "ab" + strings.Repeat("😀", Max), true},
		{"four-byte characters, shifted by three", "abc" + strings.Repeat("😀", Max), true},
		{"not UTF-8 at all", strings.Repeat("\x80", 2*Max), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Text(tt.in)
			if len(got) > Max {
				t.Fatalf("%d bytes, want at most %d", len(got), Max)
			}
			if !tt.cut {
				if got != tt.in {
					t.Fatalf("changed a text within the bound: %q", got)
				}
				return
			}
			head, ok := strings.CutSuffix(got, Marker)
			if !ok {
				t.Fatalf("no %q at the end: ...%q", Marker, got[max(0, len(got)-20):])
			}
			if !strings.HasPrefix(tt.in, head) || len(head) < Max-len(Marker)-utf8.UTFMax {
				t.Fatalf("kept %d bytes that are not the start of the text", len(head))
			}
			if utf8.ValidString(tt.in) && !utf8.ValidString(got) {
				t.Fatal("cut inside a character")
			}
			if Text(got) != got {
				t.Fatal("cutting again changed it")
			}
		})
	}
}
