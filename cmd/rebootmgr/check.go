package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/tasks"
)

// checkFlags are check's flags: how to reach Consul, the node judged and its group, and what
// its gates judge and what asks for its reboot (this node's own; another node is judged by what
// its daemon published).
type checkFlags struct {
	connFlags
	nodeFlags
	gateFlags
	askFlags
}

func checkFlagSet() (*flagSet, *checkFlags) {
	var f checkFlags
	fs := newFlagSet("check")
	fs.group(connGroup, func(g *flag.FlagSet) {
		f.connFlags.register(g)
		registerNode(g, &f.node, "the node to judge (default: the local Consul agent's node; this machine's files and commands are its only if it bears this machine's host name)")
		registerGroup(g, &f.group, "the node's group (default: the node meta "+store.GroupMeta+", else the fleet-wide group)")
	})
	fs.group(gatesGroup+" (this node's; another node's are those its daemon published)", func(g *flag.FlagSet) {
		f.gateFlags.register(g)
		f.askFlags.register(g)
	})
	return fs, &f
}

func runCheck(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, f := checkFlagSet()
	fs.Usage = fs.usage(stdout, "rebootmgr check [--node NODE]", `  rebootmgr check                       may this node reboot now, and why not
  rebootmgr check --node db-3           the same for another node (its tasks are not visible here)
`)
	if err := parse(fs.FlagSet, args, e); err != nil {
		return err
	}
	o, err := f.operator(e, stderr)
	if err != nil {
		return err
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	node, local, err := o.checked(ctx, e, f.node, stderr)
	if err != nil {
		return err
	}
	s, err := f.state(ctx, o, node, node == local, log)
	if err != nil {
		return err
	}
	verdicts := gate.All(s)
	printVerdicts(stdout, verdicts)
	how, err := notEnabledHow(ctx, e, o, node, node == local)
	if err != nil {
		return err
	}
	if how != "" {
		fmt.Fprintf(stdout, "%-9s %s  %s (on %s: %s)\n", "daemon", "not enabled", fleet.NotEnabledSays, node, how)
	}
	if v := gate.First(verdicts); v != nil {
		return v.Err
	}
	if how != "" {
		return alsoIs{fmt.Errorf("%s: its daemon is not enabled: %s", node, fleet.NotEnabledSays), errNotEnabled}
	}
	if s.SettingsError != "" {
		// The gates it cannot judge passed only as "not known".
		fmt.Fprintf(stdout, "%s: no gate fails here, but its reboot window, min reboot interval and cooldown are not known: so whether it can reboot now is not known (%s)\n", node, s.SettingsError)
		return nil
	}
	fmt.Fprintf(stdout, "%s may reboot now\n", node)
	return nil
}

// notEnabledHow says how to enable node's daemon when it is not enabled ("" when it is, or
// nothing says it is not): this machine's setting, for its own node, else what its daemon
// registered in Consul.
func notEnabledHow(ctx context.Context, e env, o *operator, node string, here bool) (string, error) {
	if here && requireEnabled(e) != nil {
		return enableHint(e), nil
	}
	d, ok, err := o.store.Daemon(ctx, node)
	if err != nil || !ok || d.State == fleet.DaemonDown || d.SettingsError != "" || d.Settings.Enabled {
		return "", err
	}
	if how, ok := strings.CutPrefix(d.Status, "not enabled: "); ok && how != "" {
		return how, nil
	}
	return "set REBOOTMGR_ENABLED=true in /etc/default/rebootmgr, then systemctl restart rebootmgr", nil
}

// state is what check judges node by, as the pipeline would, each part read when a gate first
// needs it (see gate.State): here is whether node is this machine's, whose files, commands,
// boot and tasks are its own.
func (f *checkFlags) state(ctx context.Context, o *operator, node string, here bool, log *slog.Logger) (*gate.State, error) {
	// One read of the node's catalog entry: its group and its zone.
	_, meta, err := o.store.CatalogNode(ctx, node)
	if err != nil {
		return nil, err
	}
	group, err := groupIn(node, f.group, meta)
	if err != nil {
		return nil, err
	}
	if f.group != "" {
		if err := o.requireGroup(ctx, group, "nothing judged", false); err != nil {
			return nil, err
		}
	}
	o = o.inGroup(group)
	// Judged as its daemon would judge it: a place of its name that a FleetLock request took is
	// a host's, not its own.
	s := &gate.State{Node: node, Zone: meta[store.ZoneMeta], Now: time.Now(), Daemon: true}
	s.Tasks = gate.Known(gate.TasksFound{Unknown: true})
	if err := f.judgedBy(ctx, o, s, here); err != nil {
		return nil, err
	}
	s.View = gate.Read(func() (place.View, error) { return o.store.View(ctx) })
	s.Stop = gate.Read(func() (place.Flag, error) {
		// A lock that cannot be read is the lock gate's to say.
		v, _ := s.View.Get()
		return v.Stop, nil
	})
	s.History = gate.Read(func() (history.Log, error) {
		l, _, err := o.store.History(ctx)
		return l, err
	})
	s.Disabled = gate.Read(func() (place.Flag, error) { return o.store.Disabled(ctx, node) })
	s.Request = gate.Read(func() (gate.Asked, error) { return f.requests(ctx, o, node, here, log) })
	hc := store.Health{Client: o.client, Members: o.store}
	s.Health = gate.Read(func() (health.Report, error) {
		v, _ := s.View.Get()
		return hc.Check(ctx, node, v.InFlight(node))
	})
	s.RuleLess = gate.Read(func() ([]string, error) {
		v, err := s.View.Get()
		if err != nil {
			return nil, nil
		}
		return place.RuleLess(ctx, hc, v, node)
	})
	src, err := f.alertSource()
	if err != nil {
		return nil, err
	}
	s.Alerts = gate.ReadAlerts(ctx, src)
	if here {
		l, err := f.localState(node, log)
		if err != nil {
			return nil, err
		}
		s.Boot = gate.Known(gate.Boot{ID: l.BootID, Ran: l.RebootRan})
		s.Tasks = gate.Known(gate.TasksFound{Err: l.TasksErr, Pre: l.Tasks[tasks.Pre], Post: l.Tasks[tasks.Post]})
	}
	return s, readAll(s)
}

// readAll reads every part of s that check shows, before any verdict is printed: a part that
// cannot be read (a node Consul does not know, a history that cannot be decoded) is an error of
// check's, not a gate's. Only a lock that cannot be read is the lock gate's to say.
func readAll(s *gate.State) error {
	for _, read := range []func() error{
		func() error { _, err := s.History.Get(); return err },
		func() error { _, err := s.Disabled.Get(); return err },
		func() error { _, err := s.Request.Get(); return err },
		func() error { _, err := s.Health.Get(); return err },
		func() error { _, err := s.RuleLess.Get(); return err },
	} {
		if err := read(); err != nil {
			return err
		}
	}
	return nil
}

// judgedBy gives s the node's settings: this node's flags, or what another node's daemon
// published.
func (f *checkFlags) judgedBy(ctx context.Context, o *operator, s *gate.State, here bool) error {
	var err error
	if s.Schedule, err = f.schedule(s.Node); err != nil {
		return err
	}
	s.Cooldown, s.StayGreen, s.MinRebootInterval = f.cooldown, f.stayGreen, f.minRebootInterval
	if here {
		return nil
	}
	// Another node is judged by the settings its daemon published, and its tasks by what that
	// daemon found of them.
	d, ok, err := o.store.Daemon(ctx, s.Node)
	if ok && d.Tasks != nil {
		s.Tasks = gate.Known(gate.TasksFound{Err: d.Tasks.Err, Pre: d.Tasks.Pre, Post: d.Tasks.Post})
	}
	switch {
	case err != nil:
		return err
	case !ok:
		s.SettingsError = fleet.Unpublished(s.Node)
	case d.SettingsError != "":
		s.SettingsError = d.SettingsError
	default:
		if s.Schedule, err = d.Settings.Schedule(s.Node); err != nil {
			s.SettingsError = err.Error()
		}
		s.Cooldown, s.StayGreen, s.MinRebootInterval = d.Settings.Cooldown, d.Settings.StayGreen, d.Settings.MinRebootInterval
	}
	return nil
}

// requests is what asks for the node's reboot, every source asked for the evidence, in the
// pipeline's order (see gate.Sources): files and commands are looked at only on the node
// itself.
func (f *checkFlags) requests(ctx context.Context, o *operator, node string, here bool, log *slog.Logger) (gate.Asked, error) {
	src := gate.Sources{Every: true, Key: func(ctx context.Context) (place.Flag, error) { return o.store.Trigger(ctx, node) }}
	if here {
		src.Files, src.Commands = f.triggerFiles.values, f.sentinels(log)
	}
	a, err := src.Ask(ctx)
	if !here && len(f.triggerCommands.values) > 0 {
		a.Said = []string{"reboot-required commands: not run from this node (rebootmgr check on " + node + " runs them)"}
	}
	return a, err
}

// printVerdicts prints each gate's verdict with its evidence.
func printVerdicts(w io.Writer, verdicts []gate.Verdict) {
	for _, v := range verdicts {
		verdict := "pass"
		if !v.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%-9s %s", v.Gate, verdict)
		for i, line := range v.Evidence {
			if i == 0 {
				fmt.Fprintf(w, "  %s\n", line)
			} else {
				fmt.Fprintf(w, "%-15s %s\n", "", line)
			}
		}
		if len(v.Evidence) == 0 {
			fmt.Fprintln(w)
		}
	}
}

// checked is the node check judges (--node, else the local agent's) and the node whose files and
// commands are this machine's ("" when none is: the agent's node bears another host name, and
// is judged as another node, saying so on stderr).
func (o *operator) checked(ctx context.Context, e env, flagNode string, stderr io.Writer) (node, local string, err error) {
	agent, err := o.node(ctx, nil, "")
	if err != nil {
		return "", "", err
	}
	if flagNode != "" {
		return flagNode, agent, nil
	}
	here, host, err := e.isThisMachine(agent)
	if err != nil {
		return "", "", err
	}
	if !here {
		fmt.Fprintf(stderr, "%s is the local consul agent's node, but this machine is %s: %s is judged as another node, by the settings its daemon published (--node %s judges it with this machine's files and commands)\n", agent, host, agent, agent)
		return agent, "", nil
	}
	return agent, agent, nil
}
