package cas

import (
	"errors"
	"testing"
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
			err := Loop(func() (bool, error) {
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
