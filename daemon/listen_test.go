package daemon

import (
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/watch"
)

// TestListenLetsTheWatchesGo: a run that listens hears the health of the node's services, the
// reboots in flight, the stop flags and its turn key, whatever the loop's state holds, and
// takes no event from the loop; once it closes, the watches are held as the state holds them
// for a run.
func TestListenLetsTheWatchesGo(t *testing.T) {
	sends := []watch.Source{watch.SourceLock, watch.SourceHolders, watch.SourceTurn, watch.SourceClaims}
	for _, tt := range []struct {
		name string
		s    state
		want pipeline.Change
		send []watch.Source
	}{
		{"waiting for its turn, woken", state{waitingTurn: true, queued: true}, pipeline.ChangedHealth | pipeline.ChangedTurn, sends},
		{"idle", state{idle: true}, pipeline.ChangedStop, []watch.Source{watch.SourceStop, watch.SourceTick, watch.SourceLimit}},
		{"working towards its place", state{working: true}, pipeline.ChangedHealth, []watch.Source{watch.SourcePython, watch.SourceLook}},
		{"at its start", state{}, pipeline.ChangedHealth | pipeline.ChangedStop, []watch.Source{watch.SourceStart}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &Daemon{Events: watch.NewEvents()}
			d.Quiet, d.Health, d.Turn, d.Claims = NewPauses("n1", time.Minute)
			l := d.newLoop(nil)
			l.s = tt.s
			d.hold(watches(tt.s, true))
			li := l.listen()
			if d.Quiet.Held() || d.Health.Held() || d.Turn.Held() {
				t.Fatalf("listening, held: lock %v, health %v, turn %v", d.Quiet.Held(), d.Health.Held(), d.Turn.Held())
			}
			for _, src := range tt.send {
				d.Events.Send(watch.Event{Source: src})
			}
			if got, _ := li.Take(); got != tt.want {
				t.Fatalf("heard %b, want %b", got, tt.want)
			}
			li.Close()
			h := watches(tt.s, true)
			if d.Quiet.Held() != h.quiet || d.Health.Held() != (h.health == watch.HealthHeld) || d.Turn.Held() != h.turn {
				t.Fatalf("closed, held: lock %v, health %v, turn %v; want %+v", d.Quiet.Held(), d.Health.Held(), d.Turn.Held(), h)
			}
			if got := len(d.Events.Take()); got != len(tt.send) {
				t.Fatalf("the loop takes %d events, want %d", got, len(tt.send))
			}
		})
	}
}
