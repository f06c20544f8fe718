package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
)

func runCheck(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var f rebootFlags
	f.register(fs)
	fs.Usage = usageFunc(fs, stdout, "rebootmgr check [--node NODE]", `  rebootmgr check                       may this node reboot now, and why not
  rebootmgr check --node db-3           the same for another node (its tasks are not visible here)
`)
	if err := parse(fs, args, e); err != nil {
		return err
	}
	o, err := f.operator(e, stderr)
	if err != nil {
		return err
	}
	node, local, err := o.checked(ctx, e, f.node, stderr)
	if err != nil {
		return err
	}
	// One read of the node's catalog entry: its group and its zone.
	_, meta, err := o.store.CatalogNode(ctx, node)
	if err != nil {
		return err
	}
	group, err := groupIn(node, f.group, meta)
	if err != nil {
		return err
	}
	if f.group != "" {
		if err := o.requireGroup(ctx, group, "nothing judged", false); err != nil {
			return err
		}
	}
	o.store.Group = group
	schedule, err := f.schedule(node)
	if err != nil {
		return err
	}
	s := fleet.NodeState{Node: node, Group: group, Zone: meta[store.ZoneMeta], Limit: lock.One, Now: time.Now(), Schedule: schedule, Cooldown: f.cooldown, StayGreen: f.stayGreen, MinRebootInterval: f.minRebootInterval}
	if node != local {
		// Another node is judged by the settings its daemon published.
		d, ok, err := fleet.DaemonOf(ctx, o.client, node)
		switch {
		case err != nil:
			return err
		case !ok:
			s.SettingsError = fleet.Unpublished(node)
		case d.SettingsError != "":
			s.SettingsError = d.SettingsError
		default:
			if s.Schedule, err = d.Settings.Schedule(node); err != nil {
				s.SettingsError = err.Error()
			}
			s.Cooldown, s.StayGreen, s.MinRebootInterval = d.Settings.Cooldown, d.Settings.StayGreen, d.Settings.MinRebootInterval
		}
	}
	// The history: for the cooldown, the min reboot interval, and the deadlines already reported.
	if s.History, _, err = o.store.History(ctx); err != nil {
		return err
	}
	if node == local {
		l, err := f.localState(node, stderr)
		if err != nil {
			return err
		}
		s.BootID, s.RebootRan, s.Tasks, s.TasksErr = l.BootID, l.RebootRan, l.Tasks, l.TasksErr
	} else {
		s.TasksUnknown = true
	}
	v, err := o.store.View(ctx)
	if err != nil {
		s.LockError = err.Error()
	} else {
		s.Lock, s.Limit, s.GroupNodes, s.Queue, s.Fleet, s.Claims = v.Lock, v.Limit, v.GroupNodes, v.Queue, v.Fleet, v.Claims
		if v.Stop.Set {
			s.Stop = &fleet.Mark{Value: v.Stop.Value}
		}
		s.Legacy = v.Legacy
	}
	if flag, err := o.store.Disabled(ctx, node); err != nil {
		return err
	} else if flag.Set {
		s.Disabled = &fleet.Mark{Value: flag.Value}
	}
	// What asks, and the request the pipeline would act on: a file first, then the key, then
	// the first command that says so.
	var requested []string
	if node == local {
		for _, p := range f.triggerFiles.values {
			if fi, err := os.Stat(p); err == nil {
				requested = append(requested, "file "+p)
				if s.Request.Why == "" {
					s.Request = pipeline.Request{Why: "file " + p, Written: fi.ModTime()}
				}
			}
		}
	}
	if flag, err := o.store.Trigger(ctx, node); err != nil {
		return err
	} else if flag.Set {
		requested = append(requested, "key "+o.keys.RebootRequired(node))
		if s.Request.Why == "" {
			s.Request = pipeline.Request{Why: "key reboot_required"}
		}
	}
	if node == local && len(f.triggerCommands.values) > 0 {
		log, err := f.logger(stderr)
		if err != nil {
			return err
		}
		for _, c := range f.sentinelCommands(log) {
			v := c.Run(ctx)
			if err := context.Cause(ctx); err != nil {
				return err
			}
			s.Commands = append(s.Commands, fmt.Sprintf("command %s: %s", c.Command, v.Said))
			if v.Required {
				requested = append(requested, "command "+c.Command)
				if s.Request.Why == "" {
					s.Request = pipeline.Request{Why: "command " + c.Command, Command: true}
				}
			}
		}
	} else if len(f.triggerCommands.values) > 0 {
		s.Commands = []string{"reboot-required commands: not run from this node (rebootmgr check on " + node + " runs them)"}
	}
	s.Requested = strings.Join(requested, ", ")
	if s.Health, err = (store.Health{Client: o.client, Members: o.store}).Check(ctx, node, v.InFlight(node)); err != nil {
		return err
	}
	verdicts := fleet.Gates(s)
	for _, v := range verdicts {
		verdict := "pass"
		if !v.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(stdout, "%-9s %s", v.Gate, verdict)
		for i, line := range v.Evidence {
			if i == 0 {
				fmt.Fprintf(stdout, "  %s\n", line)
			} else {
				fmt.Fprintf(stdout, "%-15s %s\n", "", line)
			}
		}
		if len(v.Evidence) == 0 {
			fmt.Fprintln(stdout)
		}
	}
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
