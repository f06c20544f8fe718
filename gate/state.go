package gate

import (
	"time"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/window"
)

// State is what the gates of one node read: a snapshot of the node and its group, whose parts
// that cost a read (Consul, a command, a file) are read on first use and kept. Whoever judges
// says how each part is read: the pipeline from its store, check from Consul and this machine,
// status from the fleet's snapshot. A State is judged by one goroutine at a time.
type State struct {
	Node string
	// Zone is the node's zone (node meta rebootmgr-zone; "" for none).
	Zone string
	// Now is when the gates are judged.
	Now time.Time
	Settings
	// SettingsError says why the node's settings are not known ("" when they are): the gates
	// that judge them pass, saying so.
	SettingsError string
	// Daemon judges the node as its daemon does: a place of its name that a FleetLock request
	// took (see lock.Holder.FleetLock) is then a host's, another machine's, that it waits for.
	// Without it (status, for a node no daemon reboots) that place is the node's own row.
	Daemon bool
	// LastReboot is when the node's last reboot finished, as the judge knows it without reading
	// the history (a daemon's memory); nil when it does not.
	LastReboot *time.Time
	// HealthLook names the health gate in a run's error ("" for HealthGate, its first look).
	HealthLook string
	// Sightings judge the times other nodes wrote (see lock.Sightings): the judge's memory,
	// nil for one that does not live on.
	Sightings *lock.Sightings

	// Stop is the fleet's stop flag, else the group's.
	Stop Part[place.Flag]
	// View is the group's lock, limit and queue, the fleet's holders and claims of room, and
	// the Python rebootmgr's holders.
	View Part[place.View]
	// History is the group's history.
	History  Part[history.Log]
	Disabled Part[place.Flag]
	// Request is what asks for the node's reboot.
	Request Part[Asked]
	// Health is the judgement of the node's services, every reboot in flight counted failing.
	Health Part[health.Report]
	// RuleLess are the holders of the group's lock that run no service with a rule over the
	// fleet, where it counts (see place.RuleLess).
	RuleLess Part[[]string]
	Boot     Part[Boot]
	Tasks    Part[TasksFound]
	// Alerts are the alerts that fire (the zero part: no alert source, the gate does not
	// apply).
	Alerts Part[AlertsFound]
}

// Settings are a node's settings that its gates judge.
type Settings struct {
	Schedule window.Schedule
	// Cooldown is the least time between the end of a reboot in the group and the start of the
	// next; StayGreen how long health must be seen passing before a place is taken;
	// MinRebootInterval the least time between two reboots of the node (0: none, each).
	Cooldown          time.Duration
	StayGreen         time.Duration
	MinRebootInterval time.Duration
}

// Boot is the machine's boot as the node knows it: its id ("" where it is not known: another
// node's), and whether the reboot command was noted as run on it.
type Boot struct {
	ID  string
	Ran bool
}

// TasksFound are the node's pre- and post-boot tasks: how many of each, or why they cannot run.
type TasksFound struct {
	// Unknown: the tasks are not visible to the judge (another node's).
	Unknown   bool
	Err       error
	Pre, Post int
}

// Part is a part of a State: read on first use, then kept. The zero Part is known, and holds
// the zero value.
type Part[T any] struct {
	read func() (T, error)
	done bool
	v    T
	err  error
}

// Read is a part read by read when first used.
func Read[T any](read func() (T, error)) Part[T] { return Part[T]{read: read} }

// Known is a part known already.
func Known[T any](v T) Part[T] { return Part[T]{done: true, v: v} }

// Get is the part, read now if it was not yet.
func (p *Part[T]) Get() (T, error) {
	if !p.done && p.read != nil {
		p.v, p.err = p.read()
		p.done, p.read = true, nil
	}
	return p.v, p.err
}

// Peek is the part if it was read (or known) already, without reading it.
func (p *Part[T]) Peek() (T, bool) {
	if !p.done && p.read != nil {
		var zero T
		return zero, false
	}
	return p.v, p.err == nil
}

// Failed is a part that could not be read, for err.
func Failed[T any](err error) Part[T] { return Part[T]{done: true, err: err} }
