package cas

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLoop(t *testing.T) {
	failed := errors.New("denied")
	for _, tt := range []struct {
		name     string
		lose     int   // races lost before the write holds
		err      error // what the try after those returns instead, if set
		tries    int
		wantErr  error
		wantNone bool
	}{
		{name: "first write holds", tries: 1, wantNone: true},
		{name: "lost twice", lose: 2, tries: 3, wantNone: true},
		{name: "an error ends it", lose: 1, err: failed, tries: 2, wantErr: failed},
		{name: "lost every race", lose: Attempts, tries: Attempts, wantErr: ErrRaces},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tries := 0
			err := loop(context.Background(), func(int) time.Duration { return 0 }, func() (bool, error) {
				tries++
				if tries <= tt.lose {
					return false, nil
				}
				return tt.err == nil, tt.err
			})
			if tries != tt.tries || (tt.wantNone && err != nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("%d tries, %v", tries, err)
			}
		})
	}
}

// TestPause: the pause after a lost race grows with the races lost in a row, and stays below
// its ceiling.
func TestPause(t *testing.T) {
	for _, tt := range []struct {
		lost    int
		ceiling time.Duration
	}{{1, firstPause}, {2, 2 * firstPause}, {4, 8 * firstPause}, {Attempts, maxPause}} {
		for range 100 {
			if p := pause(tt.lost); p < 0 || p >= tt.ceiling {
				t.Fatalf("pause after %d lost: %s, want below %s", tt.lost, p, tt.ceiling)
			}
		}
	}
}

// TestLoopEndsWithItsContext: a loop pausing after a lost race ends when its context does.
func TestLoopEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tries := 0
	err := loop(ctx, func(int) time.Duration { cancel(); return time.Hour }, func() (bool, error) {
		tries++
		return false, nil
	})
	if !errors.Is(err, context.Canceled) || tries != 1 {
		t.Fatalf("%d tries, %v", tries, err)
	}
}
