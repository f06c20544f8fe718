package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
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
	verdicts := fleet.Gates(s)
	printVerdicts(stdout, verdicts)
	if err := fleet.First(verdicts); err != nil {
		if m := s.Health.Malformed(); m != nil && errors.Is(err, pipeline.ErrUnhealthy) {
			// A tag that cannot be read: exit as reboot does (a configuration error).
			return alsoIs{err, m}
		}
		return err
	}
	fmt.Fprintf(stdout, "%s may reboot now\n", node)
	return nil
}

// state is what check judges node by, as the pipeline would: here is whether node is this
// machine's, whose files and commands are its own.
func (f *checkFlags) state(ctx context.Context, o *operator, node string, here bool, log *slog.Logger) (fleet.NodeState, error) {
	// One read of the node's catalog entry: its group and its zone.
	_, meta, err := o.store.CatalogNode(ctx, node)
	if err != nil {
		return fleet.NodeState{}, err
	}
	group, err := groupIn(node, f.group, meta)
	if err != nil {
		return fleet.NodeState{}, err
	}
	if f.group != "" {
		if err := o.requireGroup(ctx, group, "nothing judged", false); err != nil {
			return fleet.NodeState{}, err
		}
	}
	o = o.inGroup(group)
	// Judged as its daemon would judge it: a place of its name that a FleetLock request took is
	// a host's, not its own.
	s := fleet.NodeState{Node: node, Group: group, Zone: meta[store.ZoneMeta], Limit: lock.One, Now: time.Now(), Daemon: true}
	if err := f.judgedBy(ctx, o, &s, here, log); err != nil {
		return s, err
	}
	v, err := o.store.View(ctx)
	if err != nil {
		s.LockError = err.Error()
	} else {
		s.Lock, s.Limit, s.GroupNodes, s.Zones, s.Queue, s.Fleet, s.Claims = v.Lock, v.Limit, v.GroupNodes, v.Zones, v.Queue, v.Fleet, v.Claims
		if v.Stop.Set {
			s.Stop = &fleet.Mark{Value: v.Stop.Value}
		}
		s.Legacy = v.Legacy
	}
	if flag, err := o.store.Disabled(ctx, node); err != nil {
		return s, err
	} else if flag.Set {
		s.Disabled = &fleet.Mark{Value: flag.Value}
	}
	if err := f.requests(ctx, o, &s, here, log); err != nil {
		return s, err
	}
	hc := store.Health{Client: o.client, Members: o.store}
	if s.Health, err = hc.Check(ctx, node, v.InFlight(node)); err != nil {
		return s, err
	}
	s.RuleLess, err = pipeline.RuleLess(ctx, hc, v, node)
	return s, err
}

// judgedBy gives s the node's settings (this node's flags, or what another node's daemon
// published), its history, and what only the node itself knows.
func (f *checkFlags) judgedBy(ctx context.Context, o *operator, s *fleet.NodeState, here bool, log *slog.Logger) error {
	var err error
	if s.Schedule, err = f.schedule(s.Node); err != nil {
		return err
	}
	s.Cooldown, s.StayGreen, s.MinRebootInterval = f.cooldown, f.stayGreen, f.minRebootInterval
	if !here {
		// Another node is judged by the settings its daemon published.
		d, ok, err := o.store.Daemon(ctx, s.Node)
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
	}
	// The history: for the cooldown, the min reboot interval, and the deadlines already reported.
	if s.History, _, err = o.store.History(ctx); err != nil {
		return err
	}
	if !here {
		s.TasksUnknown = true
		return nil
	}
	l, err := f.localState(s.Node, log)
	if err != nil {
		return err
	}
	s.BootID, s.RebootRan, s.Tasks, s.TasksErr = l.BootID, l.RebootRan, l.Tasks, l.TasksErr
	return nil
}

// requests gives s what asks for the node's reboot, and the request the pipeline would act on:
// a file first, then the key, then the first command that says so. Files and commands are
// looked at only on the node itself.
func (f *checkFlags) requests(ctx context.Context, o *operator, s *fleet.NodeState, here bool, log *slog.Logger) error {
	var requested []string
	ask := func(what string, r pipeline.Request) {
		requested = append(requested, what)
		if s.Request.Why == "" {
			s.Request = r
		}
	}
	if here {
		for _, p := range f.triggerFiles.values {
			if fi, err := os.Stat(p); err == nil {
				ask("file "+p, pipeline.Request{Why: "file " + p, Written: fi.ModTime()})
			}
		}
	}
	if flag, err := o.store.Trigger(ctx, s.Node); err != nil {
		return err
	} else if flag.Set {
		ask("key "+o.keys.RebootRequired(s.Node), pipeline.Request{Why: "key reboot_required"})
	}
	switch {
	case here:
		for _, c := range f.sentinelCommands(log) {
			v := c.Run(ctx)
			if err := context.Cause(ctx); err != nil {
				return err
			}
			s.Commands = append(s.Commands, fmt.Sprintf("command %s: %s", c.Command, v.Said))
			if v.Required {
				ask("command "+c.Command, pipeline.Request{Why: "command " + c.Command, Command: true})
			}
		}
	case len(f.triggerCommands.values) > 0:
		s.Commands = []string{"reboot-required commands: not run from this node (rebootmgr check on " + s.Node + " runs them)"}
	}
	s.Requested = strings.Join(requested, ", ")
	return nil
}

// printVerdicts prints each gate's verdict with its evidence.
func printVerdicts(w io.Writer, verdicts []fleet.Verdict) {
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
