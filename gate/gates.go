package gate

import (
	"fmt"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// HealthGate names the health gate as a run's error says it.
const HealthGate = "health, counting every reboot in flight"

// OperatorRequest is what a reboot is for when nothing is asked (an operator's rebootmgr
// reboot, which does not look at the requests).
const OperatorRequest = "an operator's rebootmgr reboot"

const stamp = "2006-01-02T15:04:05Z"

// place is the node's entry in v's lock, if it holds one of its own: as its daemon judges it
// (Daemon), a place of its name that a FleetLock request took is another machine's.
func (s *State) place(v place.View) (lock.Holder, bool) {
	h, holds := v.Lock.Holder(s.Node)
	if holds && h.FleetLock() && s.Daemon {
		return lock.Holder{}, false
	}
	return h, holds
}

// holds says whether the node holds a place of its own (false when the lock cannot be read).
func (s *State) holds() bool {
	v, err := s.View.Get()
	if err != nil {
		return false
	}
	_, holds := s.place(v)
	return holds
}

// Overdue are the holders past their deadline whose miss the group's history does not hold yet
// (see place.Unreported): the history is read only when a holder is past its deadline.
func Overdue(s *State) ([]lock.Holder, error) {
	v, err := s.View.Get()
	if err != nil {
		return nil, err
	}
	overdue := v.Lock.Overdue(s.Now, v.Sightings)
	if len(overdue) == 0 {
		return nil, nil
	}
	l, err := s.History.Get()
	if err != nil {
		return nil, err
	}
	return place.Unreported(overdue, l), nil
}

func judgeStop(s *State) Verdict {
	f, err := s.Stop.Get()
	if err != nil {
		return failed(err)
	}
	flagged := "stop flag is set: " + orNone(f.Value)
	if f.Key != "" {
		flagged = "stop flag is set (" + f.Key + "): " + orNone(f.Value)
	}
	stopped := failShort(place.StopError(f), orNone(f.Value), flagged)
	if _, err := s.View.Get(); err != nil {
		if f.Set {
			return stopped
		}
		return pass("no stop flag (the reboot lock cannot be read: see lock)")
	}
	finishing := Finishing(s)
	const finishes = "a stop flag is set (or is set at the next run), but this node's reboot happened: it finishes it, and nothing further starts"
	if f.Set {
		if finishing {
			return pass(finishes)
		}
		return stopped
	}
	overdue, err := Overdue(s)
	switch {
	case err != nil:
		return failed(err)
	case len(overdue) == 0:
		return pass("no stop flag")
	case finishing:
		return pass(finishes)
	}
	reason := place.OverdueReason(overdue[0])
	return failShort(ending.Fail(ending.ErrStopped, "a holder is past its deadline, and its group stops: %s", reason),
		"the group is stopped at the next run: "+reason, "a holder is past its deadline, and the next run stops the group: "+reason)
}

func judgeRebooted(s *State) Verdict {
	v, err := s.View.Get()
	if err != nil {
		return skip()
	}
	h, _ := v.Lock.Holder(s.Node)
	if !Finishing(s) {
		return skip()
	}
	happened := fmt.Sprintf("this node holds the lock in phase %s: its reboot happened, the daemon finishes it", h.Phase)
	if h.Phase != lock.Rebooting {
		return pass(happened)
	}
	b, err := s.Boot.Get()
	if err != nil {
		return failed(err)
	}
	switch err := NotRebooted(s.Node, h, b, s.Now); {
	case b.ID == "":
		return pass("this node holds the lock in phase rebooting since " + h.Since.UTC().Format(stamp) + ": whether it rebooted is seen only on the node")
	case err != nil:
		return fail(err)
	case b.ID == h.BootID:
		return pass("the lock says rebooting, but the reboot command never ran on this boot: the pipeline puts it back to preparing and starts over from the gates")
	}
	return pass(happened)
}

func judgeTrigger(s *State) Verdict {
	a, err := s.Request.Get()
	if err != nil {
		return failed(err)
	}
	if a.Why == "" {
		return pass(append([]string{"no reboot requested (the daemon would do nothing; an operator's rebootmgr would still go on)"}, a.Said...)...)
	}
	return pass(append([]string{"reboot requested by " + strings.Join(a.By, ", ")}, a.Said...)...)
}

func judgeDisabled(s *State) Verdict {
	f, err := s.Disabled.Get()
	if err != nil {
		return failed(err)
	}
	if !f.Set {
		return pass("not disabled")
	}
	return failShort(ending.Disabled(s.Node, f.Value), orNone(f.Value), "disabled: "+orNone(f.Value))
}

func judgeWindow(s *State) Verdict {
	switch err := OutsideWindow(s.Schedule, s.Now); {
	case s.SettingsError != "":
		return pass("not known: " + s.SettingsError)
	case err != nil:
		return fail(err)
	case len(s.Schedule.Windows) > 0 || len(s.Schedule.Blackouts) > 0:
		return pass("inside a reboot window, and not a blackout date")
	}
	return pass("no reboot window or blackout date set: any time")
}

// judgeInterval judges the least time between two reboots of the node, for what asks for this
// one; a node that holds a place already is past it.
func judgeInterval(s *State) Verdict {
	interval := s.MinRebootInterval
	switch {
	case s.holds():
		return skip()
	case s.SettingsError != "":
		return pass("not known: " + s.SettingsError)
	case interval <= 0:
		return skip()
	case s.LastReboot != nil && !s.Now.Before(s.LastReboot.Add(interval)):
		// A newer reboot would be the judge's own: it knows it without the history.
		return pass(fmt.Sprintf("this node's last reboot finished at %s, more than %s ago", s.LastReboot.UTC().Format(time.RFC3339), interval))
	}
	l, err := s.History.Get()
	if err != nil {
		return failed(err)
	}
	a, err := s.Request.Get()
	if err != nil {
		return failed(err)
	}
	req := a.Request
	if req.Why == "" {
		req.Why = OperatorRequest
	}
	if err := WithinInterval(l, s.Node, interval, s.Now, req); err != nil {
		return fail(err)
	}
	if last, ok := place.LastReboot(l, s.Node); ok {
		return pass(fmt.Sprintf("this node's last reboot finished at %s, more than %s ago", last.End.UTC().Format(time.RFC3339), interval))
	}
	return pass(fmt.Sprintf("no reboot of this node finished within the last %s (none in the group's history)", interval))
}

func judgeHealth(s *State) Verdict {
	rep, err := s.Health.Get()
	if err != nil {
		return failed(err)
	}
	ev := healthEvidence(rep)
	v, _ := s.View.Get()
	look := s.HealthLook
	if look == "" {
		look = HealthGate
	}
	if err := place.Unhealthy(rep, v, s.Node, look); err != nil {
		return failShort(err, rep.Reason(), ev...)
	}
	return pass(ev...)
}

// healthEvidence says each thing once: each service with its rules, its passing instances and
// those that fail, or the problems it has (which say those); a tag that cannot be read as the
// configuration error it is, with what to fix; then the problems of no one service.
func healthEvidence(rep health.Report) []string {
	var ev []string
	said := 0
	for _, svc := range rep.Services {
		said += len(svc.Problems)
		switch {
		case svc.Malformed != nil:
			ev = append(ev, fmt.Sprintf("%s: %v: a configuration error, not health: fix the tags of service %s on %s (min_passing=N, max_failing=N, local_only, ignore_maintenance), then consul reload there",
				svc.Name, svc.Malformed, svc.Name, rep.Node))
			continue
		case len(svc.Problems) > 0:
			ev = append(ev, svc.Problems...)
		default:
			line := fmt.Sprintf("%s: %s, passing %d/%d", svc.Name, svc.Rules, svc.Passing, svc.Total)
			if len(svc.Failing) > 0 {
				line += ": " + strings.Join(svc.Failing, "; ")
			}
			ev = append(ev, line)
		}
		if len(svc.Disagree) > 0 {
			ev = append(ev, fmt.Sprintf("%s: instances tagged with other rules than this node's (%s): %s; the quorum rules judged by are this node's, and each instance's own ignore_maintenance says whether its node's maintenance counts",
				svc.Name, svc.Rules, strings.Join(svc.Disagree, "; ")))
		}
	}
	if len(rep.Services) == 0 {
		ev = append(ev, "no service on this node carries the tag "+health.Tag)
	}
	if said < len(rep.Problems) {
		ev = append(ev, rep.Problems[said:]...)
	}
	return ev
}

func judgeTasks(s *State) Verdict {
	t, err := s.Tasks.Get()
	switch {
	case err != nil:
		return failed(err)
	case t.Unknown:
		return pass("not visible from this node: run rebootmgr check on " + s.Node)
	case t.Err != nil:
		return fail(t.Err)
	}
	return pass(fmt.Sprintf("%d pre-boot and %d post-boot tasks, all safe to run", t.Pre, t.Post))
}

// judgeLock judges the node's place in the lock by the rules of a place (see package place):
// a FleetLock host's place of its name, the Python rebootmgr's holders, the room, the limit
// and the zones, the turn in the queue, rebooting alone under auto, and (once health holds)
// the claims of nodes with less room.
func judgeLock(s *State) Verdict {
	v, err := s.View.Get()
	if err != nil {
		return failed(err)
	}
	if h, held := v.Lock.Holder(s.Node); held && h.FleetLock() {
		if s.Daemon {
			return fail(place.FleetLockHolds(h, s.Node, v.Group))
		}
		return pass(fmt.Sprintf("this FleetLock host holds the lock: phase %s since %s; its steady-state gives it back", h.Phase, h.Since.UTC().Format(stamp)))
	}
	rep, err := s.Health.Get()
	if err != nil {
		return failed(err)
	}
	alone := aloneEvidence(v.Limit, rep, s.Zone)
	if err := placeable(s, v, rep); err != nil {
		why := strings.TrimPrefix(err.Error(), "cannot take the reboot lock: ")
		return fail(err, append([]string{why}, alone...)...)
	}
	if h, holds := v.Lock.Holder(s.Node); holds {
		return pass(fmt.Sprintf("this node holds the lock: phase %s since %s", h.Phase, h.Since.UTC().Format(stamp)))
	}
	return pass(append([]string{fmt.Sprintf("group %s: %d held; limit %s", v.Group, len(v.Lock.Holders), v.Limit.Describe(v.GroupNodes))}, alone...)...)
}

// placeable says whether the node could take a place in v, or go on with the one it holds
// (nil), or why not.
func placeable(s *State, v place.View, rep health.Report) error {
	if err := place.LockFree(v, lock.Holder{Node: s.Node, Zone: s.Zone}, rep.FleetRuled(), s.Now); err != nil {
		return err
	}
	ruleLess, err := s.RuleLess.Get()
	if err != nil {
		return err
	}
	if err := place.Alone(v, s.Node, ruleLess); err != nil {
		return err
	}
	if !rep.OK() {
		return nil
	}
	return place.YieldIn(v, s.Node, rep, s.Now)
}

func judgeCooldown(s *State) Verdict {
	switch {
	case s.holds():
		return skip()
	case s.SettingsError != "":
		return pass("not known: " + s.SettingsError)
	case s.Cooldown <= 0:
		return skip()
	}
	l, err := s.History.Get()
	if err != nil {
		return failed(err)
	}
	if err := WithinCooldown(l, s.Cooldown, s.Now, s.Sightings); err != nil {
		return fail(err)
	}
	return pass(fmt.Sprintf("no reboot of the group finished within the last %s", s.Cooldown))
}

// judgeStayGreen is health seen passing without a break for StayGreen: the pipeline watches it
// over that time (keeping the node's turn); judged at one moment, it is the health gate's.
func judgeStayGreen(s *State) Verdict {
	if s.holds() || s.StayGreen <= 0 {
		return skip()
	}
	return pass(fmt.Sprintf("health must be seen passing without a break for %s before the lock is taken, keeping its turn in the queue meanwhile (the pipeline watches it; check looks once)", s.StayGreen))
}

// Alone says why a node of zone, whose services rep judges, reboots only alone under limit,
// nobody holding a place beside it ("" where it does not): under auto it runs no service with
// a rule over the fleet (none tagged rebootmgr, or only local_only ones, which count its own
// instance only), and under a limit per zone it has no zone, a zone of its own.
func Alone(limit lock.Limit, rep health.Report, zone string) string {
	var why []string
	if limit.Auto && !rep.FleetRuled() {
		why = append(why, fmt.Sprintf("the limit is auto and it runs no service with a rule over the fleet (none tagged %s, or only local_only ones)", health.Tag))
	}
	if limit.PerZone > 0 && zone == "" {
		why = append(why, "the limit is per zone and it has no zone (node meta rebootmgr-zone): a zone of its own")
	}
	return strings.Join(why, "; ")
}

// aloneEvidence is the lock gate's evidence of why the node reboots alone, where it does.
func aloneEvidence(limit lock.Limit, rep health.Report, zone string) []string {
	if why := Alone(limit, rep, zone); why != "" {
		return []string{"this node reboots alone, nobody beside it: " + why}
	}
	return nil
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no reason given)"
	}
	return clip.OneLine(s)
}
