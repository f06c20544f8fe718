package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/tasks"
)

// pipelineFlags are what reboot and daemon run the pipeline by: how to reach Consul, which node
// this is, what its gates judge, what asks for its reboot and what the reboot does.
type pipelineFlags struct {
	connFlags
	nodeFlags
	gateFlags
	askFlags
	actionFlags
	testFlags
}

func (f *pipelineFlags) addTo(fs *flagSet) {
	fs.group(connGroup, func(g *flag.FlagSet) { f.connFlags.register(g); f.nodeFlags.register(g) })
	fs.group(gatesGroup, func(g *flag.FlagSet) { f.gateFlags.register(g); f.askFlags.register(g) })
	fs.group(actionGroup, f.actionFlags.register)
	fs.group(testGroup, f.testFlags.register)
}

// testFlags are for tests of rebootmgr itself, never for a fleet in service.
type testFlags struct {
	clockOffset time.Duration
}

func (f *testFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.clockOffset, "clock-offset", 0, "shift this node's clock by this much, ahead (1h) or behind (-40m), for tests of how a fleet bears clocks that differ: every time the pipeline reads or writes is moved; its waits are not")
}

// clock is the pipeline's clock: the machine's, shifted by --clock-offset.
func (f *testFlags) clock() pipeline.Clock {
	if f.clockOffset == 0 {
		return pipeline.SystemClock{}
	}
	return pipeline.ShiftedClock{Clock: pipeline.SystemClock{}, Offset: f.clockOffset}
}

const rebootExamples = `  rebootmgr reboot                            reboot this node now, if every gate allows it
  rebootmgr reboot --check-triggers           reboot only if a reboot was requested
  rebootmgr reboot --dry-run --settle 0s      show what would happen, change nothing
`

// rebootCommandFlags are reboot's flags: the pipeline's, and those of this one run.
type rebootCommandFlags struct {
	pipelineFlags
	checkTriggers bool
	force         bool
}

func rebootFlagSet() (*flagSet, *rebootCommandFlags) {
	var f rebootCommandFlags
	fs := newFlagSet("reboot")
	f.addTo(fs)
	fs.group("This run", func(g *flag.FlagSet) {
		g.BoolVar(&f.checkTriggers, "check-triggers", false, "reboot only if a reboot-required file or command, or the node's reboot_required key, asks for it")
		g.BoolVar(&f.force, "force", false, "reboot even though this node's daemon is not enabled (REBOOTMGR_ENABLED=false): every gate still applies")
	})
	return fs, &f
}

func runReboot(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, f := rebootFlagSet()
	fs.Usage = fs.usage(stdout, "rebootmgr reboot [flags]", rebootExamples)
	if err := parse(fs.FlagSet, args, e); err != nil {
		return err
	}
	if !f.dryRun && !f.force {
		if err := requireEnabled(e); err != nil {
			return err
		}
	}
	w, err := f.wire(ctx, e, wireOptions{checkTriggers: f.checkTriggers}, stderr)
	if err != nil {
		return err
	}
	defer w.release()
	res, err := w.pipeline.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.Message)
	return nil
}

// wireOptions are what a command adds to its flags when it wires the pipeline: whether a run
// reboots only when asked, and what counts requests and tasks (for metrics; nil: nothing).
type wireOptions struct {
	checkTriggers bool
	via           func(http.RoundTripper) http.RoundTripper
	observeTask   func(phase, task string, took time.Duration, err error)
}

// wired is what reboot and daemon run on: the pipeline, the node's group, its Consul client and
// logger, and the node's lock file, held until release.
type wired struct {
	pipeline *pipeline.Pipeline
	group    string
	store    *store.Consul
	client   *api.Client
	log      *slog.Logger
	release  func()
}

// wire takes the node's lock file and wires the pipeline from the flags.
func (f *pipelineFlags) wire(ctx context.Context, e env, opts wireOptions, stderr io.Writer) (*wired, error) {
	if err := f.connFlags.validate(); err != nil {
		return nil, err
	}
	log, err := f.logger(stderr)
	if err != nil {
		return nil, err
	}
	release, err := holdNodeLock(f.lockFile)
	if err != nil {
		return nil, err
	}
	w, err := f.pipeline(ctx, e, opts, log)
	if err != nil {
		release()
		return nil, err
	}
	w.log, w.release = log, release
	return w, nil
}

// identity is the node the pipeline runs for, its group and zone, and whether it is the local
// agent's node.
type identity struct {
	node, group, zone string
	local             bool
}

// identity is which node this is: --node, else the local agent's node, which must be this
// machine; and its group.
func (f *pipelineFlags) identity(ctx context.Context, e env, client *api.Client) (identity, error) {
	agentNode, meta, err := store.LocalNode(ctx, client)
	if err != nil {
		return identity{}, err
	}
	node := f.node
	if node == "" {
		if err := requireThisMachine(e, agentNode); err != nil {
			return identity{}, err
		}
		node = agentNode
	}
	if node != agentNode && !f.dryRun {
		return identity{}, fmt.Errorf("--node %s is not the local consul agent's node (%s): rebootmgr reboots the machine it runs on", node, agentNode)
	}
	id := identity{node: node, local: node == agentNode}
	if id.local {
		id.zone = meta[store.ZoneMeta]
	}
	id.group, err = f.ownGroup(ctx, client, node, id.local, meta)
	return id, err
}

// pipeline wires the pipeline from the flags, with the store and the Consul client it uses; each
// of its parts logs as its own component (a line names one).
func (f *pipelineFlags) pipeline(ctx context.Context, e env, opts wireOptions, base *slog.Logger) (*wired, error) {
	client, err := f.consulVia(e, opts.via)
	if err != nil {
		return nil, err
	}
	notifier, err := f.notifier(client, "", "", base)
	if err != nil {
		return nil, err
	}
	id, err := f.identity(ctx, e, client)
	if err != nil {
		return nil, err
	}
	base = base.With(logkey.Node, id.node, logkey.Group, id.group)
	notifier.Node, notifier.Group, notifier.Logger = id.node, id.group, base.With(logkey.Component, "notify")
	log := base.With(logkey.Component, "pipeline")
	schedule, err := f.schedule(id.node)
	if err != nil {
		return nil, err
	}
	breaker, err := history.ParseBreaker(f.breaker)
	if err != nil {
		return nil, fmt.Errorf("%w: --breaker: %v", errUsage, err)
	}
	alertSource, err := f.alertSource()
	if err != nil {
		return nil, err
	}
	st := &store.Consul{Client: client, Keys: store.Keys{Prefix: f.prefix}, Group: id.group, PythonMarkers: f.pythonMarkers, Logger: log}
	p := &pipeline.Pipeline{
		Config: pipeline.Config{
			Node:              id.node,
			Zone:              id.zone,
			Settle:            f.settle.d,
			CheckTriggers:     opts.checkTriggers,
			TriggerFiles:      f.triggerFiles.values,
			DryRun:            f.dryRun,
			Deadline:          f.deadline,
			Schedule:          schedule,
			Breaker:           breaker,
			Cooldown:          f.cooldown,
			StayGreen:         f.stayGreen,
			MinRebootInterval: f.minRebootInterval,
			Alerts:            alertSource,
		},
		Store:  st,
		Health: store.Health{Client: client, Members: st, Remember: !f.dryRun, Local: id.local},
		Tasks: &tasks.Runner{
			Dir: f.tasksDir, Timeout: f.taskTimeout, Node: id.node,
			Env: os.Environ(), Owner: os.Geteuid(), Logger: base.With(logkey.Component, "tasks"),
			Observe: opts.observeTask,
		},
		Rebooter:  tasks.RebootCommand{Command: f.rebootCommand, Logger: log},
		Clock:     f.clock(),
		Sentinels: f.sentinels(base),
		BootID:    pipeline.BootIDFile(f.bootIDFile),
		Note:      pipeline.RebootNote(rebootNote(f.lockFile)),
		Notifier:  notifier,
		Logger:    log,
	}
	return &wired{pipeline: p, group: id.group, store: st, client: client}, nil
}

// ownGroup is the group the node acts in: --group, which must be known, else (on the agent's
// node) its node meta, else the default group.
func (f *pipelineFlags) ownGroup(ctx context.Context, client *api.Client, node string, isAgent bool, meta map[string]string) (string, error) {
	if f.group != "" {
		return f.group, ownGroupKnown(ctx, &store.Consul{Client: client, Keys: store.Keys{Prefix: f.prefix}}, f.group)
	}
	if g := meta[store.GroupMeta]; isAgent && g != "" {
		return g, groupMeta(node, g)
	}
	return store.DefaultGroup, nil
}

// rebootNote is where the pipeline notes the reboot command before it runs: beside the lock
// file, in /run, which a boot empties.
func rebootNote(lockFile string) string {
	return strings.TrimSuffix(lockFile, ".lock") + ".reboot"
}
