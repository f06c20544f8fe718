package fleetlock

import (
	"context"
	"log/slog"
	"time"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// alertsHold refuses host a place while alerts of the server's source fire, judged by the
// daemons' own gate (gate.Alerts) on v, the lock state the request read: an alert that names a
// node or host holding a place in a lock of the fleet does not count (its reboot raises it),
// and a source that cannot be read holds every host back, unless the server was told to go on
// without it. The refusal names the alerts (alerts_firing), or says that the source cannot be
// read (alerts_unavailable), leaving its address and error to the log.
func (l *Locks) alertsHold(ctx context.Context, log *slog.Logger, v place.View, host string, now time.Time) error {
	if l.Alerts == nil || l.Alerts.URL == "" {
		return nil
	}
	s := &gate.State{Node: host, Now: now, View: gate.Known(v), Alerts: gate.ReadAlerts(ctx, l.Alerts)}
	verdict := gate.Named(gate.Alerts).Judged(s)
	if verdict.Pass {
		return nil
	}
	if found, _ := s.Alerts.Get(); found.Err != nil {
		log.Warn("the alert source cannot be read: no host takes a place until it can", logkey.Err, found.Err)
		return &Refusal{Kind: KindAlertsUnavailable, Value: "the alert source cannot be read: no host takes a place until it can"}
	}
	log.Info("held back by alerts", logkey.Reason, verdict.Reason)
	return &Refusal{Kind: KindAlertsFiring, Value: verdict.Reason + ": no host takes a place while they fire"}
}
