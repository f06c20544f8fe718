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
	"github.com/rebootmgr/rebootmgr/notify"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/tasks"
	"github.com/rebootmgr/rebootmgr/window"
)

// rebootFlags are the flags of the pipeline, shared by reboot and (later) the daemon.
type rebootFlags struct {
	globalFlags
	rebootCommand string
	triggerFiles  listFlag
	// triggerCommands are the reboot-required commands (exit 0: reboot), each run with
	// /bin/sh -c for at most triggerTimeout.
	triggerCommands   listFlag
	triggerTimeout    time.Duration
	minRebootInterval time.Duration
	tasksDir          string
	taskTimeout       time.Duration
	settle            settleFlag
	bootIDFile        string
	lockFile          string
	dryRun            bool
	checkTriggers     bool
	deadline          time.Duration
	windows           listFlag
	blackouts         listFlag
	breaker           string
	cooldown          time.Duration
	stayGreen         time.Duration
	spread            time.Duration
	notifyURL         string
	pythonMarkers     bool

	// via wraps the Consul client's transport, and observeTask hears of every task (both for
	// metrics; unset, nothing is counted).
	via         func(http.RoundTripper) http.RoundTripper
	observeTask func(phase, task string, took time.Duration, err error)
}

func (f *rebootFlags) register(fs *flag.FlagSet) {
	f.globalFlags.register(fs)
	f.triggerFiles.values = defaultTriggerFiles()
	f.settle.d = pipeline.SettleAuto
	fs.StringVar(&f.rebootCommand, "reboot-command", "systemctl reboot", "command that reboots the machine (run with /bin/sh -c)")
	fs.Var(&f.triggerFiles, "reboot-required-file", "a file whose existence requests a reboot (repeatable; the environment takes a colon-separated list)")
	f.triggerCommands.sep = "\n"
	fs.Var(&f.triggerCommands, "reboot-required-command", `a command whose exit 0 requests a reboot, run with /bin/sh -c, e.g. "! needs-restarting -r" (repeatable; the environment takes one a line); any other exit, or a failure to run, is no request`)
	fs.DurationVar(&f.triggerTimeout, "reboot-required-command-timeout", tasks.DefaultSentinelTimeout, "how long a reboot-required command may run; its process group is killed then, and that is no request")
	fs.DurationVar(&f.minRebootInterval, "min-reboot-interval", time.Hour, "least time between the end of this node's last reboot and the start of its next, so that a request the reboot does not clear cannot reboot it in a loop (0: none)")
	fs.StringVar(&f.tasksDir, "tasks-dir", "/etc/rebootmgr", "directory holding pre_boot_tasks/ and post_boot_tasks/")
	fs.DurationVar(&f.taskTimeout, "task-timeout", tasks.DefaultTimeout, "how long one task may run")
	fs.Var(&f.settle, "settle", "after the pre-boot tasks, wait this long before checking again: auto (until every check has run again, at most 3m) or a duration")
	fs.StringVar(&f.bootIDFile, "boot-id-file", "/proc/sys/kernel/random/boot_id", "file holding the boot id, which changes on every boot")
	fs.StringVar(&f.lockFile, "lock-file", "/run/rebootmgr.lock", "file locked so that only one rebootmgr acts on this node at a time")
	fs.BoolVar(&f.dryRun, "dry-run", false, "run the checks and the tasks (with REBOOTMGR_DRY_RUN=1), change nothing, never reboot")
	fs.BoolVar(&f.checkTriggers, "check-triggers", false, "reboot only if a reboot-required file or the node's reboot_required key exists")
	f.windows.sep, f.blackouts.sep = ";", ";"
	fs.Var(&f.windows, "reboot-window", `start reboots only inside this weekly window, e.g. "Mon-Fri 02:00-05:00 Europe/Berlin" (repeatable; the environment takes a list separated by ';')`)
	fs.DurationVar(&f.spread, "window-spread", 0, "start at this node's own moment within the first part of each window, so a group does not start at once")
	fs.Var(&f.blackouts, "blackout", "no reboot starts on these dates: YYYY-MM-DD, a comma list, or @FILE with one date a line (repeatable; the environment takes a list separated by ';')")
	fs.StringVar(&f.notifyURL, "notify-url", "", "also POST every notification (reboot started and finished, task failed, group stopped) as JSON to this URL; a Consul event named rebootmgr is always fired")
	fs.DurationVar(&f.stayGreen, "stay-green", 0, "the health checks must pass for this long, watched without a break, before the node takes the lock")
	fs.DurationVar(&f.cooldown, "cooldown", 0, "least time between the end of one reboot in the group and the start of the next")
	fs.StringVar(&f.breaker, "breaker", "off", "stop the group after FAILURES/PERIOD failed reboots (task failures, deadline misses), e.g. 3/1h")
	fs.DurationVar(&f.deadline, "reboot-deadline", 30*time.Minute, "from the start of the reboot to the end of the post-boot part; a node past it stops its group, keeping the lock (0: none)")
	fs.BoolVar(&f.pythonMarkers, "python-markers", true, "mark this node's reboots in the Python rebootmgr's reboot_in_progress keys, so that nodes still running it wait for them, and watch its keys (false once no node runs it)")
}

// defaultTriggerFiles are the reboot-required files looked for unless told otherwise: the
// kernel hook's, Debian's and Ubuntu's, and SUSE's (zypper writes /run/reboot-needed).
func defaultTriggerFiles() []string {
	return []string{"/var/run/reboot_required", "/var/run/reboot-required", "/run/reboot-needed"}
}

const rebootExamples = `  rebootmgr reboot                            reboot this node now, if every gate allows it
  rebootmgr reboot --check-triggers           reboot only if a reboot was requested
  rebootmgr reboot --dry-run --settle 0s      show what would happen, change nothing
`

// rebootCommandFlags are reboot's flags: the pipeline's, and --force.
type rebootCommandFlags struct {
	rebootFlags
	force bool
}

func (r *rebootCommandFlags) register(fs *flag.FlagSet) {
	r.rebootFlags.register(fs)
	fs.BoolVar(&r.force, "force", false, "reboot even though this node's daemon is not enabled (REBOOTMGR_ENABLED=false): every gate still applies")
}

func runReboot(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reboot", flag.ContinueOnError)
	var rf rebootCommandFlags
	rf.register(fs)
	f := &rf.rebootFlags
	fs.Usage = usageFunc(fs, stdout, "rebootmgr reboot [flags]", rebootExamples)
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if !f.dryRun && !rf.force {
		if err := requireEnabled(e); err != nil {
			return err
		}
	}
	w, err := f.wire(ctx, e, stderr)
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

// wired is what reboot and daemon run on: the pipeline, its Consul client and logger, and the
// node's lock file, held until release.
type wired struct {
	pipeline *pipeline.Pipeline
	store    *store.Consul
	client   *api.Client
	log      *slog.Logger
	release  func()
}

// wire takes the node's lock file and wires the pipeline from the flags.
func (f *rebootFlags) wire(ctx context.Context, e env, stderr io.Writer) (*wired, error) {
	if err := f.validate(); err != nil {
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
	w, err := f.pipeline(ctx, e, log.With(logkey.Component, "pipeline"))
	if err != nil {
		release()
		return nil, err
	}
	w.log, w.release = log, release
	return w, nil
}

// pipeline wires the pipeline from the flags, with the store and the Consul client it uses.
func (f *rebootFlags) pipeline(ctx context.Context, e env, log *slog.Logger) (*wired, error) {
	client, err := f.consulVia(e, f.via)
	if err != nil {
		return nil, err
	}
	agentNode, meta, err := store.LocalNode(ctx, client)
	if err != nil {
		return nil, err
	}
	node := f.node
	if node == "" {
		if err := requireThisMachine(e, agentNode); err != nil {
			return nil, err
		}
		node = agentNode
	}
	if node != agentNode && !f.dryRun {
		return nil, fmt.Errorf("--node %s is not the local consul agent's node (%s): rebootmgr reboots the machine it runs on", node, agentNode)
	}
	group, err := f.ownGroup(ctx, client, node, node == agentNode, meta)
	if err != nil {
		return nil, err
	}
	f.group = group
	zone := ""
	if node == agentNode {
		zone = meta[store.ZoneMeta]
	}
	log = log.With(logkey.Node, node, logkey.Group, group)
	schedule, err := f.schedule(node)
	if err != nil {
		return nil, err
	}
	breaker, err := history.ParseBreaker(f.breaker)
	if err != nil {
		return nil, fmt.Errorf("%w: --breaker: %v", errUsage, err)
	}
	st := &store.Consul{Client: client, Keys: store.Keys{Prefix: f.prefix}, Group: group, PythonMarkers: f.pythonMarkers, Logger: log}
	p := &pipeline.Pipeline{
		Config: pipeline.Config{
			Node:              node,
			Zone:              zone,
			Settle:            f.settle.d,
			CheckTriggers:     f.checkTriggers,
			TriggerFiles:      f.triggerFiles.values,
			DryRun:            f.dryRun,
			Deadline:          f.deadline,
			Schedule:          schedule,
			Breaker:           breaker,
			Cooldown:          f.cooldown,
			StayGreen:         f.stayGreen,
			MinRebootInterval: f.minRebootInterval,
		},
		Store:  st,
		Health: store.Health{Client: client, Members: st, Remember: !f.dryRun, Local: node == agentNode},
		Tasks: &tasks.Runner{
			Dir: f.tasksDir, Timeout: f.taskTimeout, Node: node,
			Env: os.Environ(), Owner: os.Geteuid(), Logger: log.With(logkey.Component, "tasks"),
			Observe: f.observeTask,
		},
		Rebooter:  tasks.RebootCommand{Command: f.rebootCommand, Logger: log},
		Clock:     pipeline.SystemClock{},
		Sentinels: f.sentinels(log),
		BootID:    pipeline.BootIDFile(f.bootIDFile),
		Note:      pipeline.RebootNote(rebootNote(f.lockFile)),
		Notifier:  notify.Notifier{Client: client, URL: f.notifyURL, Node: node, Group: group, Logger: log.With(logkey.Component, "notify")},
		Logger:    log,
	}
	return &wired{pipeline: p, store: st, client: client}, nil
}

// ownGroup is the group the node acts in: --group, which must be known, else (on the agent's
// node) its node meta, else the default group.
func (f *rebootFlags) ownGroup(ctx context.Context, client *api.Client, node string, isAgent bool, meta map[string]string) (string, error) {
	if f.group != "" {
		return f.group, ownGroupKnown(ctx, &store.Consul{Client: client, Keys: store.Keys{Prefix: f.prefix}}, f.group)
	}
	if g := meta[store.GroupMeta]; isAgent && g != "" {
		return g, groupMeta(node, g)
	}
	return store.DefaultGroup, nil
}

// sentinels are the reboot-required commands.
func (f *rebootFlags) sentinels(log *slog.Logger) []pipeline.Sentinel {
	var out []pipeline.Sentinel
	for _, c := range f.sentinelCommands(log) {
		out = append(out, c)
	}
	return out
}

// sentinelCommands are the reboot-required commands as tasks.Sentinel.
func (f *rebootFlags) sentinelCommands(log *slog.Logger) []tasks.Sentinel {
	var out []tasks.Sentinel
	for _, c := range f.triggerCommands.values {
		out = append(out, tasks.Sentinel{Command: c, Timeout: f.triggerTimeout, Env: os.Environ(), Logger: log.With(logkey.Component, "reboot-required-command")})
	}
	return out
}

// rebootNote is where the pipeline notes the reboot command before it runs: beside the lock
// file, in /run, which a boot empties.
func rebootNote(lockFile string) string {
	return strings.TrimSuffix(lockFile, ".lock") + ".reboot"
}

// schedule reads the reboot windows and blackout dates.
func (f *rebootFlags) schedule(node string) (window.Schedule, error) {
	blackouts, err := f.blackoutDates()
	if err != nil {
		return window.Schedule{}, err
	}
	s, err := window.Build(f.windows.values, blackouts, node, f.spread)
	if err != nil {
		return s, fmt.Errorf("%w: %v", errUsage, err)
	}
	return s, nil
}

// blackoutDates are the dates of every --blackout, read from their files where they name one.
func (f *rebootFlags) blackoutDates() (map[string]bool, error) {
	out := map[string]bool{}
	for _, b := range f.blackouts.values {
		var r io.Reader = strings.NewReader(b)
		if name, ok := strings.CutPrefix(b, "@"); ok {
			file, err := os.Open(name)
			if err != nil {
				return nil, fmt.Errorf("%w: --blackout: %v", errUsage, err)
			}
			defer file.Close()
			r = file
		}
		dates, err := window.ParseBlackouts(r)
		if err != nil {
			return nil, fmt.Errorf("%w: --blackout: %v", errUsage, err)
		}
		for d := range dates {
			out[d] = true
		}
	}
	return out, nil
}
