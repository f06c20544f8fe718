// Package tasks runs the operator's pre- and post-boot tasks: the executables in
// <dir>/pre_boot_tasks and <dir>/post_boot_tasks, in name order, each with a timeout. Tasks run
// as the user rebootmgr runs as (root, in production), so a task that someone else could have
// written, or swapped for another file through a directory or link on its way, is refused,
// never run.
package tasks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rebootmgr/rebootmgr/logkey"
)

// The phases and the directories that hold their tasks.
const (
	Pre  = "pre"
	Post = "post"

	PreDir  = "pre_boot_tasks"
	PostDir = "post_boot_tasks"
)

// DefaultTimeout is how long one task may run, unless told otherwise (--task-timeout).
const DefaultTimeout = 2 * time.Minute

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

func phaseDir(phase string) (string, error) {
	switch phase {
	case Pre:
		return PreDir, nil
	case Post:
		return PostDir, nil
	}
	return "", fmt.Errorf("unknown task phase %q", phase)
}

// Validate checks the Runner's timeout and the tasks of both phases.
func (r *Runner) Validate() error {
	if err := r.checkTimeout(); err != nil {
		return err
	}
	for _, phase := range []string{Pre, Post} {
		if _, err := r.List(phase); err != nil {
			return err
		}
	}
	return nil
}

// List returns the tasks of phase in the order they run, after checking that each is safe to
// run (see checkTask). The tasks directory must exist (a mistyped one must not mean "nothing to
// do before the reboot"); a phase without its directory in it has no tasks.
func (r *Runner) List(phase string) ([]Task, error) {
	dir, err := r.dirOf(phase)
	if err != nil || dir == "" {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read task directory: %w", err)
	}
	var out []Task
	for _, e := range entries {
		name := e.Name()
		if skipped(name) {
			continue
		}
		path := filepath.Join(dir, name)
		isDir, err := r.checkTask(path)
		if err != nil {
			return nil, err
		}
		if isDir {
			r.log().Warn("not a task: a directory in the task directory is skipped", logkey.Path, path)
			continue
		}
		out = append(out, Task{Name: name, Path: path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// skipped reports whether a directory entry is no task: hidden files and the leftovers of
// package managers and editors.
func skipped(name string) bool {
	return strings.HasPrefix(name, ".") ||
		strings.HasSuffix(name, "~") ||
		strings.Contains(name, ".dpkg-") ||
		strings.Contains(name, ".rpm") ||
		strings.HasSuffix(name, ".ucf-old") || strings.HasSuffix(name, ".ucf-new") || strings.HasSuffix(name, ".ucf-dist")
}

// dirOf checks the tasks directory and the directory of phase in it, and returns the latter
// (under r.Dir as given, made absolute: tasks run in /); "" when the tasks directory has none.
// Both must be directories that only root or r.Owner can write to, sticky bit or not: whoever
// can add a file there can add a task.
func (r *Runner) dirOf(phase string) (string, error) {
	sub, err := phaseDir(phase)
	if err != nil {
		return "", err
	}
	top, fi, err := r.resolve(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("tasks directory %s does not exist: %w", r.Dir, err)
	}
	if err != nil {
		return "", fmt.Errorf("tasks directory %s: %w", r.Dir, err)
	}
	if err := r.checkTaskDir(r.Dir, fi); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(r.Dir)
	if err != nil {
		return "", fmt.Errorf("tasks directory %s: %w", r.Dir, err)
	}
	dir := filepath.Join(abs, sub)
	// Only the name itself missing means no tasks; a link to nowhere is an error.
	if _, err := os.Lstat(filepath.Join(top, sub)); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if _, fi, err = r.resolve(dir); err != nil {
		return "", fmt.Errorf("task directory %s: %w", dir, err)
	}
	if err := r.checkTaskDir(dir, fi); err != nil {
		return "", err
	}
	return dir, nil
}

func (r *Runner) checkTaskDir(path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%w: task directory %s is not a directory", ErrUnsafe, path)
	}
	return r.checkMode(path, fi, false)
}

// checkTask checks that the task file at path is safe to run: the path leads, through safe
// directories and links only (see resolve), to a regular executable file that only root or
// r.Owner can write to, in a directory that only they can write to, sticky bit or not (whoever
// can add a name there could make it a hard link to any file of root's). Once that holds,
// nobody else can change what the path runs. isDir reports a directory (or a link to one) at
// path instead, which is no task.
func (r *Runner) checkTask(path string) (isDir bool, err error) {
	real, fi, err := r.resolve(path)
	if errors.Is(err, ErrUnsafe) {
		return false, fmt.Errorf("task %s: %w", path, err)
	}
	if err != nil {
		return false, fmt.Errorf("%w: task %s: %v", ErrUnsafe, path, err)
	}
	if fi.IsDir() {
		return true, nil
	}
	name := path
	if real != path {
		name = fmt.Sprintf("%s (a link to %s)", path, real)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%w: task %s is not a regular file", ErrUnsafe, name)
	}
	if err := r.checkMode(name, fi, false); err != nil {
		return false, err
	}
	if fi.Mode().Perm()&0o100 == 0 {
		return false, fmt.Errorf("%w: task %s is not executable (chmod 0755 it, or remove it)", ErrUnsafe, name)
	}
	dir := filepath.Dir(real)
	if fi, err = os.Lstat(dir); err != nil {
		return false, fmt.Errorf("%w: task %s: %v", ErrUnsafe, path, err)
	}
	if err := r.checkMode(dir, fi, false); err != nil {
		return false, fmt.Errorf("task %s: %w", path, err)
	}
	return false, nil
}

// maxLinks bounds the links followed in one path, as the kernel's 40 do.
const maxLinks = 40

// resolve follows path one name at a time from /, as the kernel does when it runs the path,
// links included, and checks every directory a name is looked up in on the way: it must be
// owned by root or r.Owner and not writable by group or others, unless it has the sticky bit
// (like /tmp: then nobody but the owner of an entry, or of the directory, can rename or remove
// the entry, and the next step checks the entry's owner). Every link on the way must be owned
// by root or r.Owner too. So nobody else can change where the path leads. It returns the path
// without links and what is at its end, not followed.
func (r *Runner) resolve(path string) (string, fs.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, err
	}
	checked := map[string]bool{}
	cur := "/"
	todo := strings.Split(abs, "/")
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		if name == "" || name == "." {
			continue
		}
		if !checked[cur] {
			if err := r.checkPassage(cur); err != nil {
				return "", nil, err
			}
			checked[cur] = true
		}
		if name == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", nil, &fs.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
		}
		// A link cannot be changed, only replaced by whoever may remove it: in a sticky
		// directory, its owner.
		if err := r.checkOwner(next, fi); err != nil {
			return "", nil, err
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", nil, err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", nil, err
	}
	return cur, fi, nil
}

// checkPassage checks a directory that a name is looked up in.
func (r *Runner) checkPassage(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "resolve", Path: dir, Err: syscall.ENOTDIR}
	}
	return r.checkMode(dir, fi, true)
}

// checkMode refuses a file or directory that is writable by group or others (a directory with
// the sticky bit may be, when sticky is true), or owned by someone other than root or r.Owner.
func (r *Runner) checkMode(path string, fi fs.FileInfo, sticky bool) error {
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 && !(sticky && fi.Mode()&fs.ModeSticky != 0) {
		return fmt.Errorf("%w: %s is writable by group or others (mode %04o): tasks run as root", ErrUnsafe, path, perm)
	}
	return r.checkOwner(path, fi)
}

// checkOwner refuses a file owned by someone other than root or r.Owner.
func (r *Runner) checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: %s: cannot read its owner", ErrUnsafe, path)
	}
	if st.Uid != 0 && int(st.Uid) != r.Owner {
		return fmt.Errorf("%w: %s is owned by uid %d, not root or uid %d", ErrUnsafe, path, st.Uid, r.Owner)
	}
	return nil
}

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

// reap waits for the task after SIGTERM; after the grace period its whole group gets SIGKILL.
func (r *Runner) reap(pgid int, waited <-chan error, log *slog.Logger) error {
	grace := time.NewTimer(r.grace())
	defer grace.Stop()
	var werr error
	select {
	case werr = <-waited:
	case <-grace.C:
		log.Warn("task did not exit after SIGTERM: SIGKILL to its process group")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-waited
	}
	// The leader is gone; give the rest of its group what is left of the grace period.
	for groupAlive(pgid) {
		select {
		case <-grace.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return werr
		case <-time.After(20 * time.Millisecond):
		}
	}
	return werr
}

// groupAlive reports whether a process of the group still runs. A zombie does not count: it
// has exited and only waits to be reaped by whoever inherited it.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After "(comm)": state, ppid, pgrp.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

// waitGroupGone waits up to d for the group to have no running process.
func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// waitCopy waits for the output to be read to its end; a process that escaped its group and
// still holds the pipe does not hold up the run longer than d.
func waitCopy(copied <-chan struct{}, pr *os.File, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-copied:
	case <-t.C:
		pr.Close()
		<-copied
	}
}

// MaxLine is how much of a line of a task's output is kept, in the log and in Error.LastLine;
// the rest of a longer line is read and dropped, and the line is marked with CutMark.
const MaxLine = 4096

// CutMark ends a line of output that was cut at MaxLine.
const CutMark = "... (cut)"

// lineLogger logs a task's output line by line under the task's name. It reads everything the
// task writes, however long its lines: a task must never block on a full pipe.
type lineLogger struct {
	log      *slog.Logger
	mu       sync.Mutex
	lastLine string
}

func (l *lineLogger) copy(r io.Reader) {
	// One byte more than is kept: a line of exactly MaxLine fits, newline and all.
	br := bufio.NewReaderSize(r, MaxLine+1)
	cut := false // the rest of the current line is dropped
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than MaxLine: keep its start, read and drop the rest.
			if !cut {
				l.line(string(whole(chunk[:MaxLine])) + CutMark)
				cut = true
			}
			continue
		}
		if !cut && len(chunk) > 0 {
			l.line(strings.TrimSuffix(strings.TrimSuffix(string(chunk), "\n"), "\r"))
		}
		cut = false
		if err != nil {
			return
		}
	}
}

// whole drops a character cut in half at the end of b.
func whole(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i > len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

func (l *lineLogger) line(line string) {
	l.log.Info("task output", logkey.Line, line)
	if strings.TrimSpace(line) != "" {
		l.mu.Lock()
		l.lastLine = line
		l.mu.Unlock()
	}
}

func (l *lineLogger) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastLine
}
