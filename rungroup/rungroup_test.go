package rungroup

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroup: the first part to end ends the others, Run waits for all of them, and returns
// the first part's error, whatever the others return as they stop.
func TestGroup(t *testing.T) {
	boom, late := errors.New("boom"), errors.New("stopped badly")
	// now ends at once with err; onCancel ends with err once its context ends.
	now := func(err error) func(context.Context) error {
		return func(context.Context) error { return err }
	}
	onCancel := func(err error) func(context.Context) error {
		return func(ctx context.Context) error { <-ctx.Done(); return err }
	}
	tests := []struct {
		name   string
		parts  []func(context.Context) error
		cancel bool // the caller's context ends
		want   error
	}{
		{"no parts", nil, false, nil},
		{"a part fails: the others stop", []func(context.Context) error{onCancel(nil), now(boom), onCancel(nil)}, false, boom},
		{"the first error is returned, not the others'", []func(context.Context) error{onCancel(late), now(boom)}, false, boom},
		{"a part ends cleanly: the others stop, and nil", []func(context.Context) error{now(nil), onCancel(late)}, false, nil},
		{"the caller's context ends", []func(context.Context) error{onCancel(nil), onCancel(nil)}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var running atomic.Int32
			var g Group
			for _, p := range tt.parts {
				g.Add(func(ctx context.Context) error {
					running.Add(1)
					defer running.Add(-1)
					return p(ctx)
				})
			}
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx) }()
			if tt.cancel {
				cancel()
			}
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
					t.Fatalf("Run = %v, want %v", err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the group did not end")
			}
			if n := running.Load(); n != 0 {
				t.Fatalf("%d parts still running after Run returned", n)
			}
		})
	}
}
