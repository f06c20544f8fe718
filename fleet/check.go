package fleet

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/window"
)

// NodeState is what the gates of one node read.
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
	// Requested says what asks for a reboot ("" when nothing does); Commands are the verdicts
	// of the reboot-required commands, one a line; Request is what the pipeline would reboot
	// for (the min reboot interval judges it).
	Requested string
	Commands  []string
	Request   pipeline.Request
	Health    health.Report
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
}

// The gates, in the order the pipeline meets them. Each verdict of Gates is one of them.
const (
	GateStop      = "stop"
	GateRebooted  = "rebooted"
	GateTrigger   = "trigger"
	GateDisabled  = "disabled"
	GateWindow    = "window"
	GateInterval  = "interval"
	GateHealth    = "health"
	GateStayGreen = "stay green"
	GateTasks     = "tasks"
	GateCooldown  = "cooldown"
	GateLock      = "lock"
)

// GateOrder is every gate, in the order the pipeline meets them: the node's own gates, the
// lock (its room and the node's turn in the queue), then the waits on the way to a place, which
// only a node that could take one waits for, keeping its turn.
func GateOrder() []string {
	return []string{GateStop, GateRebooted, GateTrigger, GateDisabled, GateWindow, GateInterval, GateHealth, GateTasks, GateLock, GateCooldown, GateStayGreen}
}

// Verdict is one gate's answer, with its evidence.
type Verdict struct {
	Gate     string
	Pass     bool
	Evidence []string
	// Err is the error the pipeline would end with at this gate (nil when it passes).
	Err error
}

// Gates evaluates every gate of a node, in the pipeline's order, without stopping at the first
// that fails.
func Gates(s NodeState) []Verdict {
	var out []Verdict
	add := func(gate string, err error, evidence ...string) {
		out = append(out, Verdict{Gate: gate, Pass: err == nil, Evidence: evidence, Err: err})
	}

	h, holds := s.Lock.Holder(s.Node)
	// A FleetLock host's entry under this name: the row of that host, or (a daemon runs here)
	// another machine's place, which this node waits for.
	hostHolds := holds && h.FleetLock()
	if hostHolds && s.Daemon {
		holds = false
	}
	switch overdue := place.Unreported(s.Lock.Overdue(s.Now, nil), s.History); {
	case holds && !hostHolds && h.Phase != lock.Preparing && (s.Stop != nil || len(overdue) > 0):
		// The pipeline finishes a reboot that happened under a stop flag too.
		add(GateStop, nil, "a stop flag is set (or is set at the next run), but this node's reboot happened: it finishes it, and nothing further starts")
	case s.Stop != nil:
		add(GateStop, fmt.Errorf("%w: %s", ending.ErrStopped, orNone(s.Stop.Value)), "stop flag is set: "+orNone(s.Stop.Value))
	case len(overdue) > 0:
		reason := place.OverdueReason(overdue[0])
		add(GateStop, fmt.Errorf("%w: the group is stopped at the next run: %s", ending.ErrStopped, reason), "a holder is past its deadline, and the next run stops the group: "+reason)
	default:
		add(GateStop, nil, "no stop flag")
	}

	if holds && h.Phase != lock.Preparing && !hostHolds {
		// The pipeline finishes this reboot; the gates before the lock no longer apply to it.
		switch err := pipeline.RebootedGate(s.Node, h, s.BootID, s.RebootRan); {
		case h.Phase == lock.Rebooting && s.BootID == "":
			add(GateRebooted, nil, "this node holds the lock in phase rebooting since "+h.Since.UTC().Format("2006-01-02T15:04:05Z")+": whether it rebooted is seen only on the node")
		case err != nil:
			add(GateRebooted, err, err.Error())
		case h.Phase == lock.Rebooting && s.BootID == h.BootID:
			add(GateRebooted, nil, "the lock says rebooting, but the reboot command never ran on this boot: the pipeline puts it back to preparing and starts over from the gates")
		default:
			add(GateRebooted, nil, fmt.Sprintf("this node holds the lock in phase %s: its reboot happened, the daemon finishes it", h.Phase))
		}
	}

	if s.Requested != "" {
		add(GateTrigger, nil, append([]string{"reboot requested by " + s.Requested}, s.Commands...)...)
	} else {
		add(GateTrigger, nil, append([]string{"no reboot requested (the daemon would do nothing; an operator's rebootmgr would still go on)"}, s.Commands...)...)
	}

	if s.Disabled != nil {
		add(GateDisabled, fmt.Errorf("%w: %s", ending.ErrDisabled, orNone(s.Disabled.Value)), "disabled: "+orNone(s.Disabled.Value))
	} else {
		add(GateDisabled, nil, "not disabled")
	}

	switch err := pipeline.WindowGate(s.Schedule, s.Now); {
	case s.SettingsError != "":
		add(GateWindow, nil, "not known: "+s.SettingsError)
	case err != nil:
		add(GateWindow, err, err.Error())
	case len(s.Schedule.Windows) > 0 || len(s.Schedule.Blackouts) > 0:
		add(GateWindow, nil, "inside a reboot window, and not a blackout date")
	default:
		add(GateWindow, nil, "no reboot window or blackout date set: any time")
	}

	req := s.Request
	if req.Why == "" {
		req.Why = "an operator's rebootmgr reboot"
	}
	switch err := pipeline.IntervalGate(s.History, s.Node, s.MinRebootInterval, s.Now, req); {
	case s.SettingsError != "":
		add(GateInterval, nil, "not known: "+s.SettingsError)
	case err != nil:
		add(GateInterval, err, err.Error())
	case s.MinRebootInterval > 0:
		if last, ok := place.LastReboot(s.History, s.Node); ok {
			add(GateInterval, nil, fmt.Sprintf("this node's last reboot finished at %s, more than %s ago", last.End.UTC().Format(time.RFC3339), s.MinRebootInterval))
		} else {
			add(GateInterval, nil, fmt.Sprintf("no reboot of this node finished within the last %s (none in the group's history)", s.MinRebootInterval))
		}
	}

	var ev []string
	for _, svc := range s.Health.Services {
		line := fmt.Sprintf("%s: %s, passing %d/%d", svc.Name, svc.Rules, svc.Passing, svc.Total)
		if len(svc.Failing) > 0 {
			line += ": " + strings.Join(svc.Failing, "; ")
		}
		ev = append(ev, line)
	}
	if len(s.Health.Services) == 0 {
		ev = append(ev, "no service on this node carries the tag "+health.Tag)
	}
	if !s.Health.OK() {
		add(GateHealth, fmt.Errorf("%w: %s", ending.ErrUnhealthy, s.Health.Reason()), append(ev, s.Health.Problems...)...)
	} else {
		add(GateHealth, nil, ev...)
	}

	if s.TasksUnknown {
		add(GateTasks, nil, "not visible from this node: run rebootmgr check on "+s.Node)
	} else if s.TasksErr != nil {
		add(GateTasks, s.TasksErr, s.TasksErr.Error())
	} else {
		add(GateTasks, nil, fmt.Sprintf("%d pre-boot and %d post-boot tasks, all safe to run", s.Tasks[pipeline.PreBoot], s.Tasks[pipeline.PostBoot]))
	}

	switch {
	case s.LockError != "":
		add(GateLock, fmt.Errorf("%s", s.LockError), s.LockError)
	case hostHolds && s.Daemon:
		err := place.FleetLockHolds(h, s.Node, s.Group)
		add(GateLock, err, err.Error())
	case hostHolds:
		add(GateLock, nil, fmt.Sprintf("this FleetLock host holds the lock: phase %s since %s; its steady-state gives it back", h.Phase, h.Since.UTC().Format("2006-01-02T15:04:05Z")))
	case holds:
		add(GateLock, nil, fmt.Sprintf("this node holds the lock: phase %s since %s", h.Phase, h.Since.UTC().Format("2006-01-02T15:04:05Z")))
	case len(s.Legacy) > 0:
		why := legacyReason(s.Legacy)
		add(GateLock, fmt.Errorf("%w: %s", ending.ErrLockHeld, why), why)
	default:
		// The pipeline's own judgement of the room, the limit, the zones, the queue and (once
		// health holds) the claims of nodes with less room.
		v := place.View{Group: s.Group, Lock: s.Lock, Limit: s.Limit, GroupNodes: s.GroupNodes, Zones: s.Zones, Queue: s.Queue, Fleet: s.Fleet, Legacy: s.Legacy, Claims: s.Claims}
		err := place.LockFree(v, lock.Holder{Node: s.Node, Zone: s.Zone}, s.Health.FleetRuled(), s.Now)
		if err == nil {
			err = place.Alone(v, s.Node, s.RuleLess)
		}
		if err == nil && s.Health.OK() {
			err = place.YieldIn(v, s.Node, s.Health, s.Now)
		}
		if err != nil {
			why := strings.TrimPrefix(err.Error(), "cannot take the reboot lock: ")
			add(GateLock, fmt.Errorf("%w: %s", ending.ErrLockHeld, why), append([]string{why}, alone(s)...)...)
		} else {
			add(GateLock, nil, append([]string{fmt.Sprintf("group %s: %d held; limit %s", s.Group, len(s.Lock.Holders), s.Limit.Describe(s.GroupNodes))}, alone(s)...)...)
		}
	}

	switch err := pipeline.CooldownGate(s.History, s.Cooldown, s.Now, nil); {
	case s.SettingsError != "":
		add(GateCooldown, nil, "not known: "+s.SettingsError)
	case err != nil:
		add(GateCooldown, err, err.Error())
	case s.Cooldown > 0:
		add(GateCooldown, nil, fmt.Sprintf("no reboot of the group finished within the last %s", s.Cooldown))
	}

	if s.StayGreen > 0 {
		add(GateStayGreen, nil, fmt.Sprintf("health must be seen passing without a break for %s before the lock is taken, keeping its turn in the queue meanwhile (the pipeline watches it; check looks once)", s.StayGreen))
	}

	return out
}

// First returns the error of the first gate that fails, in the order the pipeline meets them,
// or nil (see Blocking).
func First(vs []Verdict) error {
	if v := Blocking(vs); v != nil {
		return v.Err
	}
	return nil
}

// Blocking returns the first gate that fails, in the order the pipeline meets them, or nil:
// the stop flags; reading the lock; whether a reboot under way happened (a reboot under way is
// finished whatever the gates before the lock say, once health holds); then disabled, window,
// the min reboot interval, health, tasks, cooldown, and taking the lock.
func Blocking(vs []Verdict) *Verdict {
	get := func(gate string) *Verdict {
		for i := range vs {
			if vs[i].Gate == gate && !vs[i].Pass {
				return &vs[i]
			}
		}
		return nil
	}
	if v := get(GateStop); v != nil {
		return v
	}
	if v := get(GateLock); v != nil && !errors.Is(v.Err, ending.ErrLockHeld) {
		return v
	}
	if v := get(GateRebooted); v != nil {
		return v
	}
	if slices.ContainsFunc(vs, func(v Verdict) bool { return v.Gate == GateRebooted }) {
		return get(GateHealth)
	}
	for _, gate := range GateOrder() {
		if v := get(gate); v != nil {
			return v
		}
	}
	return nil
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no reason given)"
	}
	return clip.OneLine(s)
}

// legacyReason says that the Python rebootmgr holds the lock, and through which keys.
func legacyReason(legacy map[string]string) string {
	return "the Python rebootmgr holds the lock (" + place.LegacyHeld(legacy) + ")"
}
