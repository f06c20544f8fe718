package gate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/ending"
)

// AlertsFound is what the alerts gate reads: the alerts that fire and that the operator's filter
// chooses, as the judge read them from the alert source.
type AlertsFound struct {
	// Source names the alert source ("" when none is set: the gate does not apply).
	Source string
	// Firing are the alerts the filter chooses that fire.
	Firing []alerts.Alert
	// Err says why the source could not be read (nil when it was).
	Err error
	// IgnoreUnreachable: a source that cannot be read holds nothing back.
	IgnoreUnreachable bool
	// Every is how often a node held back looks again (the source has no blocking query).
	Every time.Duration
}

// DefaultAlertsEvery is how often a node held back by the alerts looks again, unless told.
const DefaultAlertsEvery = 30 * time.Second

// AlertSource is an alert source as the gate reads it: where, which alerts count, and what a
// source that cannot be read does.
type AlertSource struct {
	alerts.Source
	IgnoreUnreachable bool
	// Every is how often a node held back looks again (DefaultAlertsEvery when zero).
	Every time.Duration
}

// ReadAlerts is the part of a State that reads src's alerts on first use (the zero part, no
// alert source, when src is nil).
func ReadAlerts(ctx context.Context, src *AlertSource) Part[AlertsFound] {
	if src == nil || src.URL == "" {
		return Part[AlertsFound]{}
	}
	return Read(func() (AlertsFound, error) { return src.Read(ctx), nil })
}

// Read reads the alerts that fire now.
func (src AlertSource) Read(ctx context.Context) AlertsFound {
	firing, err := src.Firing(ctx)
	return AlertsFound{Source: src.URL, Firing: firing, Err: err, IgnoreUnreachable: src.IgnoreUnreachable, Every: src.Every}
}

// maxAlertsShown bounds the alerts a verdict names one by one.
const maxAlertsShown = 10

// judgeAlerts holds every node back while an alert the filter chooses fires, but those that
// name a node holding a place in a lock of the fleet (its own reboot takes it down, and alerts
// such as "target down" fire for it: they do not hold the roll) and a source that cannot be
// read (unless the operator chose to go on without it).
func judgeAlerts(s *State) Verdict {
	a, err := s.Alerts.Get()
	every := a.Every
	if every <= 0 {
		every = DefaultAlertsEvery
	}
	switch {
	case err != nil:
		return failed(err)
	case a.Source == "":
		return skip()
	case a.Err != nil && a.IgnoreUnreachable:
		return pass("the alert source cannot be read, and reboots go on without it (--alerts-ignore-unreachable): " + a.Err.Error())
	case a.Err != nil:
		e := &ending.Error{Gate: ending.ErrAlerts, Name: Alerts, Until: s.Now.Add(every),
			Msg: "the alert source cannot be read: reboots are held back until it can (--alerts-ignore-unreachable goes on without it): " + a.Err.Error()}
		return failShort(e, "the alert source cannot be read: "+a.Err.Error())
	}
	holding := s.rebooting()
	var firing, own []alerts.Alert
	for _, al := range a.Firing {
		if n := namesAny(al, holding); n != "" {
			own = append(own, al)
			continue
		}
		firing = append(firing, al)
	}
	var ev []string
	if len(own) > 0 {
		ev = append(ev, fmt.Sprintf("%d alert(s) naming a node that holds a place (its reboot raises them) do not count: %s", len(own), listAlerts(own)))
	}
	if len(firing) == 0 {
		return pass(append([]string{"no alert the filter chooses fires (" + a.Source + ")"}, ev...)...)
	}
	msg := fmt.Sprintf("%d alert(s) fire: %s", len(firing), listAlerts(firing))
	e := &ending.Error{Gate: ending.ErrAlerts, Name: Alerts, Until: s.Now.Add(every), Msg: "held back while alerts fire: " + msg}
	ev = append([]string{msg + " (" + a.Source + ")"}, ev...)
	return failShort(e, msg, ev...)
}

// rebooting are the nodes that hold a place in a lock of the fleet, the Python rebootmgr's too
// (none when the lock cannot
// be read: then every alert counts).
func (s *State) rebooting() []string {
	v, err := s.View.Get()
	if err != nil {
		return nil
	}
	var out []string
	for n := range v.Fleet.Holders {
		out = append(out, n)
	}
	for _, h := range v.Lock.Holders {
		out = append(out, h.Node)
	}
	for _, n := range v.Legacy {
		if n != "" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// namesAny is the first of nodes that a names ("" for none).
func namesAny(a alerts.Alert, nodes []string) string {
	for _, n := range nodes {
		if a.Names(n) {
			return n
		}
	}
	return ""
}

// listAlerts names the first alerts of as, saying how many more there are.
func listAlerts(as []alerts.Alert) string {
	var names []string
	for i, a := range as {
		if i == maxAlertsShown {
			names = append(names, fmt.Sprintf("and %d more", len(as)-i))
			break
		}
		names = append(names, a.String())
	}
	return strings.Join(names, "; ")
}
