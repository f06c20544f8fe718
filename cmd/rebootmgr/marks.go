package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/notify"
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
	// told, when set, is the kind of notification a change of the mark sends.
	told string
	// again: a reboot request that the reboot under way took is not one that still asks; it is
	// written again (see store.Consul.AskAgain).
	again bool
	// warn: once written, say what keeps the node from acting on it (see operator.warnRequest).
	warn bool
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
			name: "stop", synopsis: "rebootmgr stop [--group GROUP [--force]] [--reason TEXT]", set: true, existsIsError: true, key: stopKey, python: pythonGroupStop, told: notify.KindStopped,
			reasonHelp: "why the fleet stops (recorded with who, where and when)",
			examples:   "  rebootmgr stop --reason \"galera upgrade, until 14:00\"     the whole fleet\n  rebootmgr stop --group compute --reason \"nova upgrade\"   one group\n",
			done:       func(_, v string) string { return "stopped: " + v },
			unchanged: func(_, v string) string {
				return "already stopped: " + orNone(v) + " (rebootmgr resume first to change the reason)"
			},
		},
		{
			name: "resume", synopsis: "rebootmgr resume [--group GROUP]", key: stopKey, python: pythonGroupStop, told: notify.KindResumed,
			examples:  "  rebootmgr resume\n  rebootmgr resume --group compute\n",
			done:      func(_, v string) string { return "resumed: removed the stop flag " + orNone(v) },
			unchanged: func(string, string) string { return "not stopped" },
		},
		{
			name: "trigger", synopsis: "rebootmgr trigger [NODE] [--reason TEXT]", perNode: true, set: true, key: requestKey, again: true, warn: true,
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
	fs, g := m.flagSet()
	fs.Usage = fs.usage(stdout, m.synopsis, m.examples)
	maxArgs := 0
	if m.perNode {
		maxArgs = 1
	}
	settings := e
	if !m.perNode {
		// The group to stop or resume is the one the command line names: REBOOTMGR_GROUP, in
		// the file every command shares, is this node's own group, and would turn the fleet's
		// stop into its group's.
		settings = e.without("REBOOTMGR_GROUP")
	}
	pos, err := parseArgs(fs.FlagSet, args, settings, maxArgs)
	if err != nil {
		return err
	}
	if len(g.reason) > clip.MaxReason {
		// Cut, it would lose what the operator wrote without saying so.
		return fmt.Errorf("%w: --reason is %d bytes, more than the %d allowed: nothing written (give the gist, and where the details are)", errUsage, len(g.reason), clip.MaxReason)
	}
	return g.inDatacenters(ctx, e, stdout, false, func(stdout io.Writer) error { return m.act(ctx, e, g, pos, stdout, stderr) })
}

// act sets or removes the mark in one datacenter (see connFlags.inDatacenters).
func (m markCommand) act(ctx context.Context, e env, g *markFlags, pos []string, stdout, stderr io.Writer) error {
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	tell, err := m.teller(o, g, e)
	if err != nil {
		return err
	}
	node, err := m.target(ctx, o, e, pos, g.node, stderr)
	if err != nil {
		return err
	}
	key := m.key(o.keys, node, g.group)
	if !m.set {
		return m.remove(ctx, o, node, key, g.group, stdout, tell)
	}
	if err := m.mayWrite(ctx, o, node, g.group, g.force); err != nil {
		return err
	}
	if err := m.write(ctx, o, e, node, key, g, stdout, tell); err != nil || !m.warn {
		return err
	}
	o.warnRequest(ctx, node, stderr)
	return nil
}

// teller tells of a change of the mark, whose value was value (nothing for a mark that tells
// nothing): a stop with its reason, a resume with who resumed and the stop it ended.
func (m markCommand) teller(o *operator, g *markFlags, e env) (func(ctx context.Context, value string), error) {
	if m.told == "" {
		return func(context.Context, string) {}, nil
	}
	n, err := g.notifier(o.client, "", g.group, o.store.Logger)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, value string) {
		if !m.set {
			value = stamp(e, time.Now()) + "; the stop was: " + orNone(value)
		}
		n.Tell(ctx, m.told, value)
	}, nil
}

// target is the node whose key a per-node mark writes (the argument, --node, else the agent's
// node, said when it is not this machine); "" for a mark of the fleet or a group.
func (m markCommand) target(ctx context.Context, o *operator, e env, pos []string, flagNode string, stderr io.Writer) (string, error) {
	if !m.perNode {
		return "", nil
	}
	node, err := o.node(ctx, pos, flagNode)
	if err != nil {
		return "", err
	}
	if len(pos) == 0 && flagNode == "" {
		// The agent's node, by default: said when it is not this machine.
		if here, host, err := e.isThisMachine(node); err == nil && !here {
			fmt.Fprintf(stderr, "%s is the node of the consul agent rebootmgr talks to, not this machine (%s)\n", node, host)
		}
	}
	return node, nil
}

// write sets the mark's key, and the Python rebootmgr's half of it, saying what it did.
func (m markCommand) write(ctx context.Context, o *operator, e env, node, key string, g *markFlags, stdout io.Writer, tell func(context.Context, string)) error {
	value := withReason(g.reason, e, time.Now())
	existing, err := o.store.Create(ctx, key, value)
	if m.again && errors.Is(err, store.ErrExists) {
		again, aerr := o.store.AskAgain(ctx, node, value, existing)
		if aerr != nil || again {
			if again {
				fmt.Fprintf(stdout, "asked %s again: the earlier request was taken by the reboot under way: %s (%s)\n", node, value, key)
			}
			return aerr
		}
	}
	switch {
	case err != nil && m.name == "stop" && g.group == "" && aclRefused(err):
		// A node's own token (its daemon's) may not stop the fleet: say the ways on.
		return fmt.Errorf("%w: the fleet's stop takes an operator's token (deploy/acl/rebootmgr-operator.hcl); a node's own token (rebootmgr-daemon.hcl) may stop its group: rebootmgr stop --group %s", err, o.ownGroup(ctx, e))
	case err != nil && !errors.Is(err, store.ErrExists):
		return err
	}
	said := fmt.Sprintf("%s (%s)", m.done(node, value), key)
	if err != nil {
		said = m.unchanged(node, existing.Value)
	}
	// The Python rebootmgr's half is written even when this one was set already: a mark set
	// before it was written too holds a Python node from now on.
	py, perr := m.writePython(ctx, o, node, g.group, value, said)
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
	if err == nil {
		tell(ctx, value)
	}
	return nil
}

// mayWrite refuses to set a node's key for a node Consul does not know, or a group's stop flag
// for a group nothing knows (a typo, most often), unless forced.
func (m markCommand) mayWrite(ctx context.Context, o *operator, node, group string, force bool) error {
	if m.perNode {
		return o.requireKnown(ctx, node, force)
	}
	if group != "" {
		return o.requireGroup(ctx, group, "nothing written; --force writes anyway", force)
	}
	return nil
}

// remove deletes the key, if it is there; of a group nothing knows it says so, rather than that
// there was nothing to remove.
func (m markCommand) remove(ctx context.Context, o *operator, node, key, group string, stdout io.Writer, tell func(context.Context, string)) error {
	removed, err := o.store.Remove(ctx, key)
	if err != nil {
		return err
	}
	said := m.unchanged(node, "")
	if removed.Set {
		said = m.done(node, removed.Value)
	}
	py, err := m.writePython(ctx, o, node, group, "", said)
	if err != nil {
		return err
	}
	if !removed.Set && py == "" && !m.perNode && group != "" {
		if err := o.requireGroup(ctx, group, "nothing removed", false); err != nil {
			return err
		}
	}
	if removed.Set || py == "" {
		fmt.Fprintln(stdout, said)
	}
	if py != "" {
		fmt.Fprintln(stdout, py)
	}
	if removed.Set {
		tell(ctx, removed.Value)
	}
	return nil
}

// markFlags are a mark command's flags: how to reach Consul, the node (of a node's key) or the
// group (of a stop flag), and what to write.
type markFlags struct {
	connFlags
	notifyFlags
	node   string
	group  string
	reason string
	force  bool
}

// register registers m's flags; reason and force are nil when m takes no such flag.
func (m markCommand) flagSet() (*flagSet, *markFlags) {
	var f markFlags
	fs := newFlagSet(m.name)
	fs.group(connGroup, func(g *flag.FlagSet) {
		f.connFlags.register(g)
		if m.perNode {
			registerNode(g, &f.node, "the node, as the NODE argument names it (default: the local Consul agent's node)")
		} else {
			registerGroup(g, &f.group, "the group to "+m.name+", by its own stop flag (default: the whole fleet; never taken from REBOOTMGR_GROUP)")
			f.connFlags.registerDatacenters(g, "fleet")
		}
	})
	if m.told != "" {
		fs.group(notifyGroup, f.notifyFlags.register)
	}
	if !m.set {
		return fs, &f
	}
	fs.group("What to write", func(g *flag.FlagSet) {
		g.StringVar(&f.reason, "reason", "", m.reasonHelp)
		if m.perNode {
			g.BoolVar(&f.force, "force", false, "write even for a node Consul does not know")
		} else {
			g.BoolVar(&f.force, "force", false, "with --group: write even for a group nothing knows (no node with its node meta "+store.GroupMeta+", no key of it)")
		}
	})
	return fs, &f
}

func orNone(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}
