// Package tasks runs the operator's pre- and post-boot tasks: the executables in
// <dir>/pre_boot_tasks and <dir>/post_boot_tasks, in name order, each with a timeout. Tasks run
// as the user rebootmgr runs as (root, in production), so a task that someone else could have
// written, or swapped for another file through a directory or link on its way, is refused,
// never run.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rebootmgr/rebootmgr/logkey"
)

// The phases and the directories that hold their tasks.
const (
	Pre  = "pre"
	Post = "post"

	PreDir  = "pre_boot_tasks"
	PostDir = "post_boot_tasks"
)

// DefaultTimeout is how long one task may run, unless told otherwise (--task-timeout): the
// Python rebootmgr's 120 minutes. A task that drains a node (a nova evacuation, a Kubernetes
// drain) routinely takes tens of minutes, and one that times out disables its node; the bound
// is for a task that hangs, not for one that works slowly.
const DefaultTimeout = 2 * time.Hour

// DefaultGrace is how long a task has to exit after SIGTERM before its process group is killed.
const DefaultGrace = 10 * time.Second

// ErrUnsafe means a task file or directory could have been written by someone other than
// its owner, or is not executable: it is refused.
var ErrUnsafe = errors.New("unsafe task")

// Runner finds, checks and runs tasks.
type Runner struct {
	// Dir holds pre_boot_tasks/ and post_boot_tasks/.
	Dir string
	// Timeout bounds each task. It must be positive: Validate and Run refuse zero or less, which
	// would mean no time at all, not "no limit".
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL (DefaultGrace when zero).
	Grace time.Duration
	// Node is passed to tasks as REBOOTMGR_NODE.
	Node string
	// Env is the environment tasks start from (before the REBOOTMGR_ variables), less the
	// Consul credentials in it (see credential).
	Env []string
	// Logger hears of every task, its output and what was skipped; nil logs nothing.
	Logger *slog.Logger
	// Owner is the user id task files and directories must belong to, besides root.
	Owner int
	// Observe, when set, hears of every task that ran (not in a dry run): how long it took and
	// how it ended (an *Error when it failed or timed out).
	Observe func(phase, task string, took time.Duration, err error)
}

// Task is one task file.
type Task struct {
	Name string
	Path string
}

// Error is a task that failed or timed out.
type Error struct {
	Task     string
	TimedOut bool
	Timeout  time.Duration
	// LastLine is the last line the task printed, which often says why.
	LastLine string
	Err      error
}

func (e *Error) Error() string {
	var msg string
	if e.TimedOut {
		msg = fmt.Sprintf("task %s timed out after %s", e.Task, e.Timeout)
	} else {
		msg = fmt.Sprintf("task %s failed: %v", e.Task, e.Err)
	}
	if e.LastLine != "" {
		msg += fmt.Sprintf(" (last output: %q)", e.LastLine)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs the tasks of phase in order and stops at the first that fails. When ctx ends, the
// running task's process group gets SIGTERM, then SIGKILL after the grace period.
func (r *Runner) Run(ctx context.Context, phase string, dryRun bool) error {
	if err := r.checkTimeout(); err != nil {
		return err
	}
	list, err := r.List(phase)
	if err != nil {
		return err
	}
	for _, t := range list {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		// What ran before may have changed this task, or a directory on its way: it is checked
		// again right before it runs, and the path it runs by is the one that was checked.
		if err := r.recheck(phase, t); err != nil {
			return err
		}
		start := time.Now()
		err := r.run(ctx, phase, t, dryRun)
		if r.Observe != nil && !dryRun {
			r.Observe(phase, t.Name, time.Since(start), err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// recheck checks a listed task again, and its directories.
func (r *Runner) recheck(phase string, t Task) error {
	if _, err := r.dirOf(phase); err != nil {
		return err
	}
	isDir, err := r.checkTask(t.Path)
	if err != nil {
		return err
	}
	if isDir {
		return fmt.Errorf("%w: task %s is a directory now", ErrUnsafe, t.Path)
	}
	return nil
}

// credential reports whether the environment variable name holds rebootmgr's Consul
// credentials, which the commands it runs do not get: CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE,
// any other CONSUL_ variable with TOKEN in its name, and CONSUL_HTTP_AUTH (user:password). A
// task that talks to Consul brings its own token; the address and TLS settings are kept.
func credential(name string) bool {
	name = strings.ToUpper(name)
	rest, ok := strings.CutPrefix(name, "CONSUL_")
	return ok && (strings.Contains(rest, "TOKEN") || rest == "HTTP_AUTH")
}

// withoutCredentials is env (NAME=value entries) without the variables that are a credential.
func withoutCredentials(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !credential(name) {
			out = append(out, kv)
		}
	}
	return out
}

// log is the Runner's logger, or one that discards when it has none.
func (r *Runner) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) checkTimeout() error {
	if r.Timeout <= 0 {
		return fmt.Errorf("task timeout %s: it must be positive", r.Timeout)
	}
	return nil
}

func (r *Runner) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return DefaultGrace
}

var errTimedOut = errors.New("task timed out")

func (r *Runner) run(ctx context.Context, phase string, t Task, dryRun bool) error {
	log := r.log().With(logkey.Task, t.Name, logkey.Phase, phase)
	timeout := r.Timeout
	tctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimedOut)
	defer cancel()

	dry := "0"
	if dryRun {
		dry = "1"
	}
	cmd := exec.Command(t.Path)
	cmd.Dir = "/"
	cmd.Env = append(withoutCredentials(r.Env), "REBOOTMGR_NODE="+r.Node, "REBOOTMGR_PHASE="+phase, "REBOOTMGR_DRY_RUN="+dry)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lineLogger{log: log}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("task %s: %w", t.Name, err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	log.Info("task started")
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return &Error{Task: t.Name, Err: err}
	}
	pw.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		out.copy(pr)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	pgid := cmd.Process.Pid
	var werr error
	ended := false
	select {
	case werr = <-waited:
	case <-tctx.Done():
		ended = true
		log.Warn("ending task: SIGTERM to its process group", logkey.Cause, context.Cause(tctx))
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		werr = r.reap(pgid, waited, log)
	}
	// Whatever the task left behind in its group is not allowed to outlive a task that was
	// ended; the pipe is read to its end only when nothing holds it open any more.
	if ended {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		// SIGKILL takes effect asynchronously: the task is only over when its group is.
		if !waitGroupGone(pgid, r.grace()) {
			log.Error("processes of the ended task are still alive after SIGKILL", logkey.PGID, pgid)
		}
	}
	waitCopy(copied, pr, r.grace())
	pr.Close()

	elapsed := time.Since(start).Round(time.Millisecond)
	if cause := context.Cause(tctx); ended {
		if errors.Is(cause, errTimedOut) {
			return &Error{Task: t.Name, TimedOut: true, Timeout: timeout, LastLine: out.last()}
		}
		return fmt.Errorf("task %s ended: %w", t.Name, cause)
	}
	if werr != nil {
		return &Error{Task: t.Name, Err: werr, LastLine: out.last()}
	}
	log.Info("task done", logkey.Duration, elapsed)
	return nil
}
