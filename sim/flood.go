package sim

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// A flood (Config.Flood): that many FleetLock ids, each as long as an id that asks for a place
// may be (fleetlock.MaxHostID), join the first group's queue at once, a third into the faults'
// time, as the FleetLock server's join writes a host refused for want of room, and never ask
// again. Their entries wait, are passed over as silent, and stay blocked for a day: the queue's
// record must stay within its bound (lock.MaxQueueBytes) whatever their number, the rest
// waiting in asks of their own.

// scheduleFlood puts the flood on the schedule, if the run has one.
func (w *World) scheduleFlood() {
	if w.cfg.Flood <= 0 {
		return
	}
	w.sched.add(epoch.Add(w.cfg.FaultTime/3), "flood", "flood", w.flood)
}

// flood joins the flood's ids to g1's queue, one write each.
func (w *World) flood() {
	n := min(w.cfg.Flood, fleetlock.MaxQueueBound)
	w.log("flood", "%d FleetLock ids of %d characters join g1's queue", n, fleetlock.MaxHostID)
	st := &store.Consul{Client: w.model.Client("fleetlock", nil), Keys: w.keys, Group: "g1", Logger: slog.New(slog.DiscardHandler), Now: clock{w: w, node: &node{}}.Now}
	for i := range n {
		id := fmt.Sprintf("flood-%s%d", strings.Repeat("x", fleetlock.MaxHostID-6-len(fmt.Sprint(i))), i)
		w.chk.flood[id] = true
		now := w.sched.now
		if err := place.ChangeQueue(context.Background(), st, slog.New(slog.DiscardHandler), func(q lock.Queue) lock.Queue { return q.Join(id, now) }); err != nil {
			w.log("flood", "%s could not join: %v", id, err)
		}
	}
}
