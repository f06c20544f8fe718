package pipeline

import (
	"context"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/place"
)

// snapshot is the node's state as the gates read it (see gate.State), each part read from the
// pipeline's store, health, tasks and machine when a gate first needs it: a run reads the
// history only for the cooldown, the min reboot interval or a holder past its deadline, asks
// the reboot-required commands only when nothing else asks, and reads whether the reboot
// happened only for a node that holds a place in phase rebooting. The stop flag is the View's.
func (p *Pipeline) snapshot(ctx context.Context) *gate.State {
	s := &gate.State{
		Node: p.Node, Zone: p.Zone, Now: p.Clock.Now(), Daemon: true,
		Settings:   gate.Settings{Schedule: p.Schedule, Cooldown: p.Cooldown, StayGreen: p.StayGreen, MinRebootInterval: p.MinRebootInterval},
		LastReboot: p.lastReboot, Sightings: p.Sightings,
	}
	s.View = gate.Read(func() (place.View, error) {
		v, err := p.locks().View(ctx)
		if err == nil {
			p.seen.sawView(v, p.Node)
		}
		return v, err
	})
	s.Stop = gate.Read(func() (place.Flag, error) {
		v, err := s.View.Get()
		return v.Stop, err
	})
	s.History = gate.Read(func() (history.Log, error) {
		l, _, err := p.Store.History(ctx)
		return l, err
	})
	s.Disabled = gate.Read(func() (place.Flag, error) { return p.Store.Disabled(ctx, p.Node) })
	s.Request = gate.Read(func() (gate.Asked, error) {
		if !p.CheckTriggers {
			return gate.Asked{Request: gate.Request{Why: gate.OperatorRequest}}, nil
		}
		return p.triggered(ctx)
	})
	s.Health = gate.Read(func() (health.Report, error) {
		v, err := s.View.Get()
		if err != nil {
			return health.Report{}, err
		}
		return p.health().Check(ctx, p.Node, v.InFlight(p.Node))
	})
	s.RuleLess = gate.Read(func() ([]string, error) {
		v, err := s.View.Get()
		if err != nil {
			return nil, err
		}
		return place.RuleLess(ctx, p.Health, v, p.Node)
	})
	s.Boot = gate.Read(func() (gate.Boot, error) {
		id, err := p.BootID()
		if err != nil {
			return gate.Boot{}, err
		}
		ran, err := p.Note.Has(id)
		return gate.Boot{ID: id, Ran: ran}, err
	})
	s.Tasks = gate.Read(func() (gate.TasksFound, error) { return gate.TasksFound{Err: p.Tasks.Validate()}, nil })
	s.Alerts = gate.ReadAlerts(ctx, p.Alerts)
	return s
}
