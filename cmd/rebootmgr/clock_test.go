package main

import (
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
)

// TestClockOffset: --clock-offset shifts every time the pipeline writes (the reboot's start, the
// end recorded in the history) by its offset, ahead or behind, and a reboot still takes its
// place, reboots and finishes.
func TestClockOffset(t *testing.T) {
	for _, offset := range []time.Duration{time.Hour, -40 * time.Minute} {
		t.Run(offset.String(), func(t *testing.T) {
			n := dev(t)
			from := time.Now()
			n.expect(n.run("reboot", "--clock-offset", offset.String()), 0, "reboot started")
			if started := n.holder("n1").RebootStarted; started.Sub(from) < offset || started.Sub(time.Now()) > offset {
				t.Fatalf("reboot started at %s, want %s after the test's clock (%s)", started, offset, from)
			}
			n.boot()
			n.expect(n.run("reboot", "--clock-offset", offset.String()), 0, "reboot finished")
			l := stored(t, n, n.keys().GroupHistory("default"), history.Decode)
			if len(l.Entries) != 1 || l.Entries[0].End.Sub(from) < offset || l.Entries[0].End.Sub(time.Now()) > offset {
				t.Fatalf("history %+v, want one reboot that ended %s after the test's clock (%s)", l.Entries, offset, from)
			}
		})
	}
	n := dev(t)
	n.expect(n.run("reboot", "--clock-offset", "soon"), exitUsage, "-clock-offset")
}
