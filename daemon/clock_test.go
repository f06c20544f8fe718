package daemon

import (
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/pipeline"
)

// TestRecheckOnThePipelinesClock: the time a run asks to look again at (a holder's deadline,
// the end of a turn) is of the pipeline's clock, which may differ from the machine's
// (--clock-offset): the daemon looks again when that clock reaches it, not an hour early or
// late.
func TestRecheckOnThePipelinesClock(t *testing.T) {
	const after = 5 * time.Minute
	for _, offset := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(offset.String(), func(t *testing.T) {
			d, p, _ := newDaemon(nil)
			clock := clockOf(d)
			d.Clock = pipeline.ShiftedClock{Clock: clock, Offset: offset}
			start(t, d)
			p.next(t, outcome{err: held, res: pipeline.Result{Recheck: d.Clock.Now().Add(after)}})
			fleettest.WaitSeen(t, clock.Pending(1), "the wait for the time asked")
			waits(t, clock, after+deadlineSlack)
			clock.Advance(after + deadlineSlack)
			p.next(t, outcome{err: held})
		})
	}
}
