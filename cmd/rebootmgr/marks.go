package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/store"
)

// markCommand sets or removes a key that means something by existing: the fleet's stop flag, a
// node's reboot request, a node's disabled mark. Setting never overwrites (the reason already
// there is kept); removing deletes only what it read.
type markCommand struct {
	name     string
	synopsis string
	examples string
	// perNode: the key belongs to a node (the argument, --node, or the local agent's).
	perNode bool
	key     func(k store.Keys, node, group string) string
	// set creates the key (with a reason and who set it); otherwise the command removes it.
	set        bool
	reasonHelp string
	// existsIsError: setting a key that exists fails (its reason is kept) rather than being a
	// no-op.
	existsIsError bool
	// done and unchanged say what happened, given the node and the key's value.
	done      func(node, value string) string
	unchanged func(node, value string) string
	// python, when set, writes the Python rebootmgr's half of the mark as well.
	python pythonSide
}

func markCommands() []markCommand {
	stopKey := func(k store.Keys, _, group string) string {
		if group != "" {
			return k.GroupStop(group)
		}
		return k.Stop()
	}
	requestKey := func(k store.Keys, node, _ string) string { return k.RebootRequired(node) }
	disabledKey := func(k store.Keys, node, _ string) string { return k.Disabled(node) }
	return []markCommand{
		{
			name: "stop", synopsis: "rebootmgr stop [--group GROUP] [--reason TEXT]", set: true, existsIsError: true, key: stopKey, python: pythonGroupStop,
			reasonHelp: "why the fleet stops (recorded with who, where and when)",
			examples:   "  rebootmgr stop --reason \"galera upgrade, until 14:00\"     the whole fleet\n  rebootmgr stop --group compute --reason \"nova upgrade\"   one group\n",
			done:       func(_, v string) string { return "stopped: " + v },
			unchanged: func(_, v string) string {
				return "already stopped: " + orNone(v) + " (rebootmgr resume first to change the reason)"
			},
		},
		{
			name: "resume", synopsis: "rebootmgr resume [--group GROUP]", key: stopKey, python: pythonGroupStop,
			examples:  "  rebootmgr resume\n  rebootmgr resume --group compute\n",
			done:      func(_, v string) string { return "resumed: removed the stop flag " + orNone(v) },
			unchanged: func(string, string) string { return "not stopped" },
		},
		{
			name: "trigger", synopsis: "rebootmgr trigger [NODE] [--reason TEXT]", perNode: true, set: true, key: requestKey,
			reasonHelp: "why the node should reboot",
			examples:   "  rebootmgr trigger                     ask this node to reboot\n  rebootmgr trigger compute-17 --reason \"kernel 6.1.0-27\"\n",
			done:       func(n, v string) string { return "asked " + n + " to reboot: " + v },
			unchanged:  func(n, v string) string { return n + " was already asked to reboot: " + orNone(v) },
		},
		{
			name: "cancel", synopsis: "rebootmgr cancel [NODE]", perNode: true, key: requestKey,
			examples: "  rebootmgr cancel compute-17\n",
			done:     func(n, v string) string { return "cancelled the reboot request of " + n + ": " + orNone(v) },
			unchanged: func(n, _ string) string {
				return n + " had no reboot request in Consul (a reboot-required file on the node is not touched)"
			},
		},
		{
			name: "disable", synopsis: "rebootmgr disable [NODE] [--reason TEXT]", perNode: true, set: true, existsIsError: true, key: disabledKey, python: pythonEnabled,
			reasonHelp: "why the node must not reboot (recorded with who, where and when)",
			examples:   "  rebootmgr disable db-3 --reason \"disk replacement, ticket 4711\"\n",
			done:       func(n, v string) string { return "disabled " + n + ": " + v },
			unchanged: func(n, v string) string {
				return n + " is already disabled: " + orNone(v) + " (rebootmgr enable " + n + " first to change the reason)"
			},
		},
		{
			name: "enable", synopsis: "rebootmgr enable [NODE]", perNode: true, key: disabledKey, python: pythonEnabled,
			examples:  "  rebootmgr enable db-3\n",
			done:      func(n, v string) string { return "enabled " + n + ": removed " + orNone(v) },
			unchanged: func(n, _ string) string { return n + " was not disabled" },
		},
	}
}

func (m markCommand) run(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(m.name, flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	var reason *string
	var force *bool
	if m.set {
		reason = fs.String("reason", "", m.reasonHelp)
	}
	if m.set && m.perNode {
		force = fs.Bool("force", false, "write even for a node Consul does not know")
	}
	fs.Usage = usageFunc(fs, stdout, m.synopsis, m.examples)
	maxArgs := 0
	if m.perNode {
		maxArgs = 1
	}
	pos, err := parseArgs(fs, args, e, maxArgs)
	if err != nil {
		return err
	}
	if reason != nil && len(*reason) > clip.MaxReason {
		// Cut, it would lose what the operator wrote without saying so.
		return fmt.Errorf("%w: --reason is %d bytes, more than the %d allowed: nothing written (give the gist, and where the details are)", errUsage, len(*reason), clip.MaxReason)
	}
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	node := ""
	if m.perNode {
		if node, err = o.node(ctx, pos, g.node); err != nil {
			return err
		}
	}
	key := m.key(o.keys, node, g.group)
	if !m.set {
		removed, err := o.store.Remove(ctx, key)
		if err != nil {
			return err
		}
		said := m.unchanged(node, "")
		if removed.Set {
			said = m.done(node, removed.Value)
		}
		py, err := m.writePython(ctx, o, node, g.group, "", said)
		if err != nil {
			return err
		}
		if removed.Set || py == "" {
			fmt.Fprintln(stdout, said)
		}
		if py != "" {
			fmt.Fprintln(stdout, py)
		}
		return nil
	}
	if force != nil {
		if err := o.requireKnown(ctx, node, *force); err != nil {
			return err
		}
	}
	return m.setMark(ctx, o, node, g.group, withReason(*reason, e, time.Now()), stdout)
}

// setMark creates the mark's key with value (and the Python rebootmgr's half, see pythonSide).
func (m markCommand) setMark(ctx context.Context, o *operator, node, group, value string, stdout io.Writer) error {
	key := m.key(o.keys, node, group)
	existing, err := o.store.Create(ctx, key, value)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	said := fmt.Sprintf("%s (%s)", m.done(node, value), key)
	if err != nil {
		said = m.unchanged(node, existing.Value)
	}
	// The Python rebootmgr's half is written even when this one was set already: a mark set
	// before it was written too holds a Python node from now on.
	py, perr := m.writePython(ctx, o, node, group, value, said)
	switch {
	case perr != nil:
		return perr
	case err != nil && m.existsIsError:
		if py != "" {
			return fmt.Errorf("%s; %s", said, py)
		}
		return errors.New(said)
	}
	fmt.Fprintln(stdout, said)
	if py != "" {
		fmt.Fprintln(stdout, py)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}
