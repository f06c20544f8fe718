package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/rebootmgr/rebootmgr/alerts"
	"github.com/rebootmgr/rebootmgr/gate"
)

// alertFlags name the alert source whose firing alerts hold every reboot back (see the alerts
// gate), and which of its alerts count.
type alertFlags struct {
	alertsURL         string
	alertsFilter      string
	alertsNodeLabels  listFlag
	ignoreUnreachable bool
	alertsEvery       time.Duration
}

func (f *alertFlags) register(fs *flag.FlagSet) {
	f.registerSource(fs, "node")
	fs.DurationVar(&f.alertsEvery, "alerts-every", gate.DefaultAlertsEvery, "how often a node held back by the alerts looks at them again")
}

// registerHosts registers the flags of the FleetLock server, which judges the alerts at each
// host's request (a host asks again at its own pace: there is no --alerts-every).
func (f *alertFlags) registerHosts(fs *flag.FlagSet) { f.registerSource(fs, "FleetLock host") }

// registerSource registers the flags that name the source and the alerts that count; who takes
// no place while one fires.
func (f *alertFlags) registerSource(fs *flag.FlagSet, who string) {
	fs.StringVar(&f.alertsURL, "alerts-url", "", "while an alert fires here, no "+who+" takes a place: Prometheus's URL (http://prometheus:9090), or an alerts API's: .../api/v1/alerts (Prometheus) or .../api/v2/alerts (Alertmanager: active, neither silenced nor inhibited); empty: no alerts gate")
	fs.StringVar(&f.alertsFilter, "alerts-filter", "", `the alerts that hold reboots back: those whose name, or one of whose labels written label=value, this regular expression matches whole, e.g. "Node.*|severity=critical" (empty: every alert that fires)`)
	f.alertsNodeLabels.sep = ","
	f.alertsNodeLabels.values = alerts.DefaultNodeLabels()
	fs.Var(&f.alertsNodeLabels, "alerts-node-labels", "the labels naming the node an alert is about (port and domain left out), a comma list: an alert naming a node that holds a place (whose reboot raises it) does not hold the others back")
	fs.BoolVar(&f.ignoreUnreachable, "alerts-ignore-unreachable", false, "reboot on when the alert source cannot be read (default: an alert source that cannot be read holds every reboot back)")
}

// alertSource is the alert source the flags name (nil: none).
func (f *alertFlags) alertSource() (*gate.AlertSource, error) {
	if f.alertsURL == "" {
		return nil, nil
	}
	filter, err := alerts.ParseFilter(f.alertsFilter)
	if err != nil {
		return nil, fmt.Errorf("%w: --alerts-filter: %v", errUsage, err)
	}
	return &gate.AlertSource{
		Source:            alerts.Source{URL: f.alertsURL, Filter: filter, NodeLabels: f.alertsNodeLabels.values},
		IgnoreUnreachable: f.ignoreUnreachable,
		Every:             f.alertsEvery,
	}, nil
}

// alertsFilter is the rule of --alerts-filter: a regular expression.
func alertsFilter(s string) error {
	_, err := alerts.ParseFilter(s)
	return err
}
