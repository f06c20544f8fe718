package place

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// Unreported are the holders past their deadline whose miss the group's history does not hold
// yet. A miss is reported once, with the group stopped: an operator who has looked and resumed
// the group lets the holder finish (or unlocks it), and no run stops the group for it again.
func Unreported(overdue []lock.Holder, l history.Log) []lock.Holder {
	var out []lock.Holder
	for _, h := range overdue {
		reported := slices.ContainsFunc(l.Entries, func(e history.Entry) bool {
			return e.Node == h.Node && e.Outcome == history.DeadlinePassed && e.Start.Equal(h.RebootStarted)
		})
		if !reported {
			out = append(out, h)
		}
	}
	return out
}

// OverdueReason says that h did not finish its reboot by its deadline, and what to do.
func OverdueReason(h lock.Holder) string {
	return fmt.Sprintf("%s did not finish its reboot by its deadline %s (phase %s since %s); its lock is kept (back, it finishes its reboot under the stop): look at %s, then resume the group, or rebootmgr unlock it (gone)",
		h.Node, h.Deadline.UTC().Format(time.RFC3339), h.Phase, h.Updated.UTC().Format(time.RFC3339), h.Node)
}

// Group is what a group keeps besides its lock that a holder past its deadline concerns: its
// stop flag and its history.
type Group interface {
	// StopGroup sets the group's stop flag with reason, keeping one already set; it reports
	// whether it set it.
	StopGroup(ctx context.Context, reason string) (bool, error)
	// History reads the group's history.
	History(ctx context.Context) (history.Log, uint64, error)
}

// Overdue is a holder past its deadline, and the reason its group was stopped with.
type Overdue struct {
	Holder lock.Holder
	Reason string
}

// UnreportedIn are the holders of rec past their deadline at now (as seen judges it: see
// lock.Holder.DeadlineOf) whose miss g's history does not hold yet (see Unreported); the history
// is read only when a holder is past its deadline.
func UnreportedIn(ctx context.Context, g Group, rec lock.Record, now time.Time, seen *lock.Sightings) ([]lock.Holder, error) {
	overdue := rec.Overdue(now, seen)
	if len(overdue) == 0 {
		return nil, nil
	}
	l, _, err := g.History(ctx)
	if err != nil {
		return nil, err
	}
	return Unreported(overdue, l), nil
}

// StopOverdue stops the group (through g) for each holder of unreported, past its deadline at
// now and its miss not reported yet (see UnreportedIn): the lock stays, and nothing else moves
// until an operator has looked. No time ever releases a lock by itself. by says who stops it
// ("rebootmgr on n1"). It returns the holders for which it set the stop flag (a flag already
// set is kept, and not returned); the caller records each miss in the history, which reports
// it.
func StopOverdue(ctx context.Context, g Group, log *slog.Logger, unreported []lock.Holder, now time.Time, by string) ([]Overdue, error) {
	var stopped []Overdue
	for _, h := range unreported {
		reason := OverdueReason(h)
		log.Error("reboot deadline passed: stopping the group", logkey.Holder, h.Node, logkey.Deadline, h.Deadline)
		set, err := g.StopGroup(ctx, reason+" ("+by+", "+now.UTC().Format(time.RFC3339)+")")
		if err != nil {
			return stopped, err
		}
		if set {
			stopped = append(stopped, Overdue{Holder: h, Reason: reason})
		}
	}
	return stopped, nil
}
