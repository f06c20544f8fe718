package fleet

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/window"
)

// NodeState is what the gates of one node read.
type NodeState struct {
	Node      string
	Group     string
	Stop      *Mark
	Lock      lock.Record
	LockError string
	Limit     int
	// Legacy are the Python rebootmgr's holders of the node's lock: key -> node (see
	// pipeline.View).
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
	// settings, History its group's reboots.
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

	if s.Stop != nil {
		add("stop", fmt.Errorf("%w: %s", pipeline.ErrStopped, orNone(s.Stop.Value)), "stop flag is set: "+orNone(s.Stop.Value))
	} else {
		add("stop", nil, "no stop flag")
	}

	h, holds := s.Lock.Holder(s.Node)
	if holds && h.Phase != lock.Preparing {
		// The pipeline finishes this reboot; the gates before the lock no longer apply to it.
		switch err := pipeline.RebootedGate(s.Node, h, s.BootID, s.RebootRan); {
		case h.Phase == lock.Rebooting && s.BootID == "":
			add("rebooted", nil, "this node holds the lock in phase rebooting since "+h.Since.UTC().Format("2006-01-02T15:04:05Z")+": whether it rebooted is seen only on the node")
		case err != nil:
			add("rebooted", err, err.Error())
		case h.Phase == lock.Rebooting && s.BootID == h.BootID:
			add("rebooted", nil, "the lock says rebooting, but the reboot command never ran on this boot: the pipeline puts it back to preparing and starts over from the gates")
		default:
			add("rebooted", nil, fmt.Sprintf("this node holds the lock in phase %s: its reboot happened, the daemon finishes it", h.Phase))
		}
	}

	if s.Requested != "" {
		add("trigger", nil, append([]string{"reboot requested by " + s.Requested}, s.Commands...)...)
	} else {
		add("trigger", nil, append([]string{"no reboot requested (the daemon would do nothing; an operator's rebootmgr would still go on)"}, s.Commands...)...)
	}

	if s.Disabled != nil {
		add("disabled", fmt.Errorf("%w: %s", pipeline.ErrDisabled, orNone(s.Disabled.Value)), "disabled: "+orNone(s.Disabled.Value))
	} else {
		add("disabled", nil, "not disabled")
	}

	switch err := pipeline.WindowGate(s.Schedule, s.Now); {
	case err != nil:
		add("window", err, err.Error())
	case len(s.Schedule.Windows) > 0 || len(s.Schedule.Blackouts) > 0:
		add("window", nil, "inside a reboot window, and not a blackout date")
	default:
		add("window", nil, "no reboot window or blackout date set: any time")
	}

	req := s.Request
	if req.Why == "" {
		req.Why = "an operator's rebootmgr reboot"
	}
	switch err := pipeline.IntervalGate(s.History, s.Node, s.MinRebootInterval, s.Now, req); {
	case err != nil:
		add("interval", err, err.Error())
	case s.MinRebootInterval > 0:
		if last, ok := pipeline.LastReboot(s.History, s.Node); ok {
			add("interval", nil, fmt.Sprintf("this node's last reboot finished at %s, more than %s ago", last.End.UTC().Format(time.RFC3339), s.MinRebootInterval))
		} else {
			add("interval", nil, fmt.Sprintf("no reboot of this node finished within the last %s (none in the group's history)", s.MinRebootInterval))
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
		add("health", fmt.Errorf("%w: %s", pipeline.ErrUnhealthy, s.Health.Reason()), append(ev, s.Health.Problems...)...)
	} else {
		add("health", nil, ev...)
	}

	if s.StayGreen > 0 {
		add("stay green", nil, fmt.Sprintf("health must be seen passing without a break for %s before the lock is taken (the pipeline watches it; check looks once)", s.StayGreen))
	}

	if s.TasksErr != nil {
		add("tasks", s.TasksErr, s.TasksErr.Error())
	} else {
		add("tasks", nil, fmt.Sprintf("%d pre-boot and %d post-boot tasks, all safe to run", s.Tasks[pipeline.PreBoot], s.Tasks[pipeline.PostBoot]))
	}

	switch err := pipeline.CooldownGate(s.History, s.Cooldown, s.Now); {
	case err != nil:
		add("cooldown", err, err.Error())
	case s.Cooldown > 0:
		add("cooldown", nil, fmt.Sprintf("no reboot of the group finished within the last %s", s.Cooldown))
	}

	switch {
	case s.LockError != "":
		add("lock", fmt.Errorf("%s", s.LockError), s.LockError)
	case holds:
		add("lock", nil, fmt.Sprintf("this node holds the lock: phase %s since %s", h.Phase, h.Since.UTC().Format("2006-01-02T15:04:05Z")))
	case len(s.Legacy) > 0:
		why := legacyReason(s.Legacy)
		add("lock", fmt.Errorf("%w: %s", pipeline.ErrLockHeld, why), why)
	default:
		if _, err := s.Lock.Acquire(lock.Holder{Node: s.Node}, s.Limit); err != nil {
			add("lock", fmt.Errorf("%w: %v", pipeline.ErrLockHeld, err), err.Error())
		} else {
			add("lock", nil, fmt.Sprintf("group %s: %d of %d held", s.Group, len(s.Lock.Holders), s.Limit))
		}
	}
	return out
}

// First returns the error of the first gate that fails, in the order the pipeline meets them
// (stop, reading the lock, whether a reboot under way happened, disabled, window, the min
// reboot interval, health, tasks, cooldown, taking the lock), or nil.
func First(vs []Verdict) error {
	get := func(gate string) *Verdict {
		for i := range vs {
			if vs[i].Gate == gate && !vs[i].Pass {
				return &vs[i]
			}
		}
		return nil
	}
	if v := get("stop"); v != nil {
		return v.Err
	}
	if v := get("lock"); v != nil && !errors.Is(v.Err, pipeline.ErrLockHeld) {
		return v.Err
	}
	if v := get("rebooted"); v != nil {
		return v.Err
	}
	if slices.ContainsFunc(vs, func(v Verdict) bool { return v.Gate == "rebooted" }) {
		// A reboot under way is finished whatever the gates before the lock say, once health
		// holds.
		if v := get("health"); v != nil {
			return v.Err
		}
		return nil
	}
	for _, gate := range []string{"disabled", "window", "interval", "health", "tasks", "cooldown", "lock"} {
		if v := get(gate); v != nil {
			return v.Err
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
	return "the Python rebootmgr holds the lock (" + pipeline.LegacyHeld(legacy) + ")"
}
