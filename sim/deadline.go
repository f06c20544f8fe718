package sim

import (
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// overdueWords follow a holder's name in the reason a group is stopped with for a holder past
// its deadline (see place.OverdueReason).
const overdueWords = " did not finish its reboot by its deadline"

// checkStopped checks a group's stop flag just written: one set for a holder past its deadline
// is set on a deadline that can be true. The holder's reboot started, in the simulation's true
// time, at least the daemons' deadline ago, less the skew by which a reader may judge a time
// written by another clock early (lock.Skew): a reboot whose node's clock is behind (or the
// reader's ahead) must not stop its group as it begins.
func (w *World) checkStopped(group, value string) {
	i := strings.Index(value, overdueWords)
	if i <= 0 {
		return
	}
	holder := value[:i]
	started, known := w.chk.rebootAt[holder]
	if !known {
		w.violate("%s's stop flag set for %s's deadline, a reboot the simulation never saw start (%q)", group, holder, value)
		return
	}
	if ago := w.sched.now.Sub(started); ago < w.cfg.Deadline-lock.Skew {
		w.violate("%s's stop flag set for a deadline that cannot be true: %s's reboot started %s ago, its deadline is %s", group, holder, ago.Round(time.Second), w.cfg.Deadline)
	}
}
