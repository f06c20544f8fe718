package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/tasks"
	"github.com/rebootmgr/rebootmgr/window"
)

// The flags of a node, by purpose: which node and group it is, what its gates judge, what asks
// for its reboot, and what its reboot does. reboot and daemon take them all; check and status
// the ones they judge by.

// nodeFlags say which node this is, and its group.
type nodeFlags struct {
	node  string
	group string
}

func (f *nodeFlags) register(fs *flag.FlagSet) {
	registerNode(fs, &f.node, "this node's name (default: the local Consul agent's node name, if it is this machine's host name)")
	registerGroup(fs, &f.group, "the node's group: its own lock, limit and stop flag (default: the node meta "+store.GroupMeta+", else the fleet-wide group)")
}

// gateFlags are the node's settings its gates judge (its daemon publishes them, and check and
// status judge by them), and its files they look at.
type gateFlags struct {
	windows           listFlag
	blackouts         listFlag
	spread            time.Duration
	cooldown          time.Duration
	stayGreen         time.Duration
	minRebootInterval time.Duration
	tasksDir          string
	triggerFiles      listFlag
	bootIDFile        string
	lockFile          string
	alertFlags
}

func (f *gateFlags) register(fs *flag.FlagSet) {
	f.windows.sep, f.blackouts.sep = ";", ";"
	fs.Var(&f.windows, "reboot-window", `start reboots only inside this weekly window, e.g. "Mon-Fri 02:00-05:00 Europe/Berlin" (repeatable; the environment takes a list separated by ';')`)
	fs.DurationVar(&f.spread, "window-spread", 0, "start at this node's own moment within the first part of each window, so a group does not start at once")
	fs.Var(&f.blackouts, "blackout", "no reboot starts on these dates: YYYY-MM-DD, a comma list, or @FILE with one date a line (repeatable; the environment takes a list separated by ';')")
	fs.DurationVar(&f.cooldown, "cooldown", 0, "least time between the end of one reboot in the group and the start of the next")
	fs.DurationVar(&f.stayGreen, "stay-green", 0, "the health checks must pass for this long, watched without a break, before the node takes the lock")
	fs.DurationVar(&f.minRebootInterval, "min-reboot-interval", time.Hour, "least time between the end of this node's last reboot and the start of its next, so that a request the reboot does not clear cannot reboot it in a loop (0: none)")
	fs.StringVar(&f.tasksDir, "tasks-dir", "/etc/rebootmgr", "directory holding pre_boot_tasks/ and post_boot_tasks/")
	f.triggerFiles.values = defaultTriggerFiles()
	fs.Var(&f.triggerFiles, "reboot-required-file", "a file whose existence requests a reboot (repeatable; the environment takes a colon-separated list)")
	fs.StringVar(&f.bootIDFile, "boot-id-file", "/proc/sys/kernel/random/boot_id", "file holding the boot id, which changes on every boot")
	fs.StringVar(&f.lockFile, "lock-file", "/run/rebootmgr.lock", "file locked so that only one rebootmgr acts on this node at a time")
	f.alertFlags.register(fs)
}

// defaultTriggerFiles are the reboot-required files looked for unless told otherwise: the
// kernel hook's, Debian's and Ubuntu's, and SUSE's (zypper writes /run/reboot-needed).
func defaultTriggerFiles() []string {
	return []string{"/var/run/reboot_required", "/var/run/reboot-required", "/run/reboot-needed"}
}

// askFlags are the commands that ask for a reboot (exit 0: reboot), each run with /bin/sh -c for
// at most triggerTimeout.
type askFlags struct {
	triggerCommands listFlag
	triggerTimeout  time.Duration
}

func (f *askFlags) register(fs *flag.FlagSet) {
	f.triggerCommands.sep = "\n"
	fs.Var(&f.triggerCommands, "reboot-required-command", `a command whose exit 0 requests a reboot, run with /bin/sh -c, e.g. "! needs-restarting -r" (repeatable; the environment takes one a line); any other exit, or a failure to run, is no request`)
	fs.DurationVar(&f.triggerTimeout, "reboot-required-command-timeout", tasks.DefaultSentinelTimeout, "how long a reboot-required command may run; its process group is killed then, and that is no request")
}

// actionFlags are what the node's reboot does, and what it tells.
type actionFlags struct {
	rebootCommand string
	taskTimeout   time.Duration
	settle        settleFlag
	dryRun        bool
	deadline      time.Duration
	breaker       string
	notifyFlags
	pythonMarkers bool
}

func (f *actionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.rebootCommand, "reboot-command", "systemctl reboot", "command that reboots the machine (run with /bin/sh -c)")
	fs.DurationVar(&f.taskTimeout, "task-timeout", tasks.DefaultTimeout, "how long one task may run")
	f.settle.d = pipeline.SettleAuto
	fs.Var(&f.settle, "settle", "after the pre-boot tasks, wait this long before checking again: auto (until every check has run again, at most 3m) or a duration")
	fs.BoolVar(&f.dryRun, "dry-run", false, "run the checks and the tasks (with REBOOTMGR_DRY_RUN=1), change nothing, never reboot")
	fs.DurationVar(&f.deadline, "reboot-deadline", 30*time.Minute, "from the start of the reboot to the end of the post-boot part; a node past it stops its group, keeping the lock (0: none)")
	fs.StringVar(&f.breaker, "breaker", "off", "stop the group after FAILURES/PERIOD failed reboots (task failures, deadline misses), e.g. 3/1h")
	f.notifyFlags.register(fs)
	fs.BoolVar(&f.pythonMarkers, "python-markers", true, "mark this node's reboots in the Python rebootmgr's reboot_in_progress keys, so that nodes still running it wait for them, and watch its keys (false once no node runs it)")
}

// sentinels are the reboot-required commands.
func (f *askFlags) sentinels(log *slog.Logger) []gate.Sentinel {
	var out []gate.Sentinel
	for _, c := range f.sentinelCommands(log) {
		out = append(out, c)
	}
	return out
}

// sentinelCommands are the reboot-required commands as tasks.Sentinel.
func (f *askFlags) sentinelCommands(log *slog.Logger) []tasks.Sentinel {
	var out []tasks.Sentinel
	for _, c := range f.triggerCommands.values {
		out = append(out, tasks.Sentinel{Command: c, Timeout: f.triggerTimeout, Env: os.Environ(), Logger: log.With(logkey.Component, "reboot-required-command")})
	}
	return out
}

// schedule reads the reboot windows and blackout dates.
func (f *gateFlags) schedule(node string) (window.Schedule, error) {
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
func (f *gateFlags) blackoutDates() (map[string]bool, error) {
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

// settings are what this node is judged by that Consul does not hold, as its daemon publishes
// them (see fleet.Settings); enabled is whether the daemon acts.
func (f *gateFlags) settings(enabled bool) (fleet.Settings, error) {
	blackouts, err := f.blackoutDates()
	if err != nil {
		return fleet.Settings{}, err
	}
	s := fleet.Settings{
		Version: version, Enabled: enabled, Windows: f.windows.values, Spread: f.spread,
		Cooldown: f.cooldown, StayGreen: f.stayGreen, MinRebootInterval: f.minRebootInterval,
	}
	for d := range blackouts {
		s.Blackouts = append(s.Blackouts, d)
	}
	return s, nil
}

// localState is what only this node knows of itself: the settings it judges by, its boot id
// and whether the reboot command ran on this boot, its tasks, and its reboot-required files.
func (f *gateFlags) localState(node string, log *slog.Logger) (*fleet.Local, error) {
	settings, err := f.settings(true)
	if err != nil {
		return nil, err
	}
	l := &fleet.Local{Settings: settings}
	if _, err := l.Settings.Schedule(node); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if l.BootID, err = pipeline.BootIDFile(f.bootIDFile)(); err != nil {
		return nil, err
	}
	if l.RebootRan, err = pipeline.RebootNote(rebootNote(f.lockFile)).Has(l.BootID); err != nil {
		return nil, err
	}
	if l.Files, err = gate.StatFiles(f.triggerFiles.values); err != nil {
		return nil, err
	}
	l.Tasks, l.TasksErr = f.listTasks(log)
	return l, nil
}

// listTasks counts this node's tasks by phase, as the pipeline lists them to run them, or says
// why they cannot run.
func (f *gateFlags) listTasks(log *slog.Logger) (map[string]int, error) {
	r := &tasks.Runner{Dir: f.tasksDir, Owner: os.Geteuid(), Logger: log.With(logkey.Component, "tasks")}
	counts := map[string]int{}
	for _, phase := range []string{tasks.Pre, tasks.Post} {
		list, err := r.List(phase)
		if err != nil {
			return counts, err
		}
		counts[phase] = len(list)
	}
	return counts, nil
}
