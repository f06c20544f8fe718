package watch

import "testing"

func TestIndexRule(t *testing.T) {
	tests := []struct {
		name             string
		waited, returned uint64
		next             uint64
		changed          bool
	}{
		{"first query", 0, 42, 42, true},
		{"advanced", 42, 43, 43, true},
		{"timed out", 42, 42, 42, false},
		{"went backwards", 42, 7, 0, true},
		{"zero index", 42, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, changed := IndexRule(tt.waited, tt.returned)
			if next != tt.next || changed != tt.changed {
				t.Fatalf("IndexRule(%d, %d) = %d, %v; want %d, %v", tt.waited, tt.returned, next, changed, tt.next, tt.changed)
			}
		})
	}
}
