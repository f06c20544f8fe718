package daemon

import (
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/pipeline"
)

// TestRecheckOnThePipelinesClock: the time a run asks to look again at (a holder's deadline,
// the end of a turn) is of the pipeline's clock, which may differ from the machine's
// (--clock-offset): the daemon looks again when that clock reaches it, not an hour early or
// late.
func TestRecheckOnThePipelinesClock(t *testing.T) {
	const after = 300 * time.Millisecond
	for _, offset := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(offset.String(), func(t *testing.T) {
			d, p, _ := newDaemon(nil)
			d.Now = func() time.Time { return time.Now().Add(offset) }
			start(t, d)
			asked := time.Now()
			p.next(t, outcome{err: held, res: pipeline.Result{Recheck: d.Now().Add(after)}})
			p.next(t, outcome{err: held})
			if took := time.Since(asked); took < after {
				t.Fatalf("looked again after %s, before the %s asked", took, after)
			}
		})
	}
}
