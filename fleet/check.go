package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/window"
)

// The names of the task phases, as package tasks names them: fleet does not import tasks, whose
// tests build fleets through store, which fills fleet's snapshot.
const (
	preBoot  = "pre"
	postBoot = "post"
)

// NodeState is what status knows of one node, from the fleet's snapshot: what its gates read (see
// State), and what its row says besides.
type NodeState struct {
	Node      string
	Group     string
	Stop      *Mark
	Lock      lock.Record
	LockError string
	Limit     lock.Limit
	// GroupNodes is how many nodes Consul knows in the group (for a limit that is a share);
	// Zone is the node's zone, Zones every node's that names one (for a limit per zone).
	GroupNodes int
	Zone       string
	Zones      map[string]string
	// RuleLess are the holders of the group's lock that run no service with a rule over the
	// fleet, where it counts (see place.RuleLess): under auto, nobody takes a place beside
	// them.
	RuleLess []string
	// Queue is the order in which the group's nodes asked for its lock.
	Queue lock.Queue
	// Fleet is every holder of every group's lock; Claims the nodes waiting for room that go
	// first (see lock.Claims).
	Fleet  lock.Fleet
	Claims lock.Claims
	// Legacy are the Python rebootmgr's holders of the node's lock: key -> node (see
	// place.View).
	Legacy   map[string]string
	Disabled *Mark
	// Asked is what asks for a reboot, and the request the pipeline would reboot for (the min
	// reboot interval judges it).
	Asked  gate.Asked
	Health health.Report
	// TasksErr is why the tasks cannot run (nil when they can); Tasks counts them by phase.
	TasksErr error
	Tasks    map[string]int
	// Now is when the gates are judged; Schedule, Cooldown and StayGreen are the node's
	// settings, History its group's reboots (for the cooldown, and the deadlines already
	// reported).
	Now       time.Time
	Schedule  window.Schedule
	Cooldown  time.Duration
	StayGreen time.Duration
	// MinRebootInterval is the node's least time between two of its reboots (0: none).
	MinRebootInterval time.Duration
	History           history.Log
	// BootID is the node's boot id, known only when check runs on the node ("" otherwise);
	// RebootRan says whether the reboot command was noted as run on that boot.
	BootID    string
	RebootRan bool
	// TasksUnknown says that the node's tasks cannot be seen from here (another node's).
	TasksUnknown bool
	// Daemon says that the node is one rebootmgr's daemon reboots (its daemon is registered;
	// check judges a node so): an entry of its name that a FleetLock request took (see
	// lock.Holder.FleetLock) is then a host's, not its own.
	Daemon bool
	// SettingsError says why the node's settings (Schedule, Cooldown, StayGreen,
	// MinRebootInterval) are not known
	// ("" when they are).
	SettingsError string
	// Alerts are the alerts that fire (see gate.AlertsFound).
	Alerts gate.AlertsFound
}

// State is s as the gates read it (see gate.State): all of it known already, from the fleet's
// snapshot (a lock that cannot be read fails the gates that read it).
func (s NodeState) State() *gate.State {
	st := &gate.State{
		Node: s.Node, Zone: s.Zone, Now: s.Now, Daemon: s.Daemon, SettingsError: s.SettingsError,
		Settings: gate.Settings{Schedule: s.Schedule, Cooldown: s.Cooldown, StayGreen: s.StayGreen, MinRebootInterval: s.MinRebootInterval},
	}
	stop := s.Stop.flag()
	st.Stop = gate.Known(stop)
	if s.LockError != "" {
		st.View = gate.Failed[place.View](errors.New(s.LockError))
	} else {
		st.View = gate.Known(place.View{Group: s.Group, Stop: stop, Lock: s.Lock, Limit: s.Limit, GroupNodes: s.GroupNodes, Zones: s.Zones,
			Fleet: s.Fleet, Queue: s.Queue, Claims: s.Claims, Legacy: s.Legacy})
	}
	st.History = gate.Known(s.History)
	st.Disabled = gate.Known(s.Disabled.flag())
	st.Request = gate.Known(s.Asked)
	st.Health = gate.Known(s.Health)
	st.RuleLess = gate.Known(s.RuleLess)
	st.Boot = gate.Known(gate.Boot{ID: s.BootID, Ran: s.RebootRan})
	st.Tasks = gate.Known(gate.TasksFound{Unknown: s.TasksUnknown, Err: s.TasksErr, Pre: s.Tasks[preBoot], Post: s.Tasks[postBoot]})
	st.Alerts = gate.Known(s.Alerts)
	return st
}

// flag is the key m as place.Flag (nil: not set).
func (m *Mark) flag() place.Flag {
	if m == nil {
		return place.Flag{}
	}
	return place.Flag{Set: true, Value: m.Value}
}

// Gates evaluates every gate of a node, in the pipeline's order, without stopping at the first
// that fails (see gate.All).
func Gates(s NodeState) []gate.Verdict { return gate.All(s.State()) }

// NodeState is what the gates of node read, from the snapshot: services are the services it
// runs with the tag rebootmgr (see servicesByNode). The settings are those its daemon
// published, else (for the node the snapshot was taken on) its own configuration.
func (s Snapshot) NodeState(name string, services []health.Service) NodeState {
	group := s.groupOf(name)
	g := s.group(group)
	st := NodeState{
		Node: name, Group: group, Lock: g.Lock, Limit: g.Limit, GroupNodes: s.groupNodes(group), Zone: s.Zones[name], Zones: s.Zones, Queue: g.Queue, Legacy: s.legacy(group),
		Fleet: s.Fleet, Claims: s.Claims,
		Now: s.At, History: g.History, TasksUnknown: true, Alerts: s.Alerts,
	}
	_, st.Daemon = s.Daemons[name]
	switch {
	case s.Stop != nil:
		st.Stop = s.Stop
	case g.Stop != nil:
		st.Stop = &Mark{Value: "group " + group + ": " + g.Stop.Value}
	}
	switch {
	case g.Error != "":
		st.LockError = g.Error
	case s.FleetError != "":
		st.LockError = s.FleetError
	case g.HistoryError != "":
		st.LockError = g.HistoryError
	}
	if m, ok := s.Disabled[name]; ok {
		st.Disabled = &m
	}
	// What asks for its reboot, as the pipeline asks (see gate.Sources): the files only the
	// node itself sees, then its key.
	asks := gate.Sources{Every: true, Key: func(context.Context) (place.Flag, error) {
		m, ok := s.Requests[name]
		return place.Flag{Set: ok, Value: m.Value}, nil
	}}
	var settings *Settings
	if d, ok := s.Daemons[name]; ok && d.SettingsError == "" {
		settings = &d.Settings
	} else if ok {
		st.SettingsError = d.SettingsError
	}
	if l := s.LocalState; name == s.Local && l != nil {
		for _, f := range l.Files {
			asks.Files = append(asks.Files, f.Path)
		}
		asks.Stat = gate.FilesFound(l.Files)
		st.BootID, st.RebootRan, st.Tasks, st.TasksErr, st.TasksUnknown = l.BootID, l.RebootRan, l.Tasks, l.TasksErr, false
		if settings == nil {
			settings = &l.Settings
		}
	}
	if d, ok := s.Daemons[name]; ok && d.Tasks != nil {
		// Only its daemon knows its tasks as they run: as root, with its --tasks-dir.
		st.Tasks = map[string]int{preBoot: d.Tasks.Pre, postBoot: d.Tasks.Post}
		st.TasksErr, st.TasksUnknown = d.Tasks.Err, false
	}
	// Nothing is read: the files were seen and the key is the snapshot's.
	st.Asked, _ = asks.Ask(context.Background())
	if settings != nil {
		sch, err := settings.Schedule(name)
		if err != nil {
			st.SettingsError = err.Error()
		}
		st.Schedule, st.Cooldown, st.StayGreen, st.MinRebootInterval = sch, settings.Cooldown, settings.StayGreen, settings.MinRebootInterval
	} else if st.SettingsError == "" {
		st.SettingsError = Unpublished(name)
	}
	st.Health = health.Evaluate(name, services, s.InFlight(name, group))
	return st
}
