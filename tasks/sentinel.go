package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rebootmgr/rebootmgr/logkey"
)

// DefaultSentinelTimeout is how long a reboot-required command may run, unless told otherwise.
const DefaultSentinelTimeout = 30 * time.Second

// sentinelOutput bounds what is kept of a reboot-required command's output.
const sentinelOutput = 4096

// Sentinel is a command that says whether the machine needs a reboot, as kured's sentinel
// command does: exit 0 means a reboot is required, any other exit that none is. It runs with
// Shell -c, so an operator can invert a command (! needs-restarting -r) or read its output
// (needrestart -b | grep ...). A command that cannot start, is killed or runs past its timeout
// never asks for a reboot: the failure is logged instead. Its whole process group is killed at
// the timeout, and it gets no Consul credentials, as tasks do not.
type Sentinel struct {
	Command string
	// Timeout bounds one run (DefaultSentinelTimeout when zero or less).
	Timeout time.Duration
	// Shell runs the command (/bin/sh when empty).
	Shell string
	// Env is the environment the command runs in, less the Consul credentials in it.
	Env    []string
	Logger *slog.Logger
}

// String names the command.
func (s Sentinel) String() string { return s.Command }

// Verdict is what one run of a Sentinel said.
type Verdict struct {
	// Required: the command exited 0.
	Required bool
	// Failed: the command could not start, was killed or timed out (never Required).
	Failed bool
	// Said is the verdict in a few words, for the log and rebootmgr check: "exit 0: reboot
	// required", "exit 1: no reboot required", "timed out after 30s: no reboot".
	Said string
}

var errSentinelTimedOut = errors.New("reboot-required command timed out")

// Ask runs the command once and says whether it asks for a reboot.
func (s Sentinel) Ask(ctx context.Context) (bool, string) {
	v := s.Run(ctx)
	return v.Required, v.Said
}

// Run runs the command once and returns its verdict.
func (s Sentinel) Run(ctx context.Context) Verdict {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(logkey.Command, s.Command)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSentinelTimeout
	}
	shell := s.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	tctx, cancel := context.WithTimeoutCause(ctx, timeout, errSentinelTimedOut)
	defer cancel()
	cmd := exec.CommandContext(tctx, shell, "-c", s.Command)
	cmd.Dir = "/"
	cmd.Env = withoutCredentials(s.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The whole group goes at the timeout: a command's children must not outlive it, nor hold
	// its output open.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out := &boundedBuffer{max: sentinelOutput}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	last := lastLine(out.String())
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil {
		// The command exited, but left a process of its group holding its output: that goes
		// (the group has a member, so its id is still the command's), and the exit stands.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		log.Warn("reboot-required command left a process behind holding its output: its process group killed", logkey.Exit, cmd.ProcessState.ExitCode())
		err = nil
		if !cmd.ProcessState.Success() {
			err = &exec.ExitError{ProcessState: cmd.ProcessState}
		}
	}
	var exit *exec.ExitError
	switch {
	case cmd.Process == nil:
		v := Verdict{Failed: true, Said: fmt.Sprintf("cannot start: %v: no reboot", err)}
		log.Warn("reboot-required command cannot start: taken as no reboot required", logkey.Err, err)
		return v
	case errors.Is(context.Cause(tctx), errSentinelTimedOut):
		log.Warn("reboot-required command timed out: its process group killed, taken as no reboot required", logkey.Timeout, timeout, logkey.Output, last)
		return Verdict{Failed: true, Said: fmt.Sprintf("timed out after %s: no reboot", timeout)}
	case ctx.Err() != nil:
		return Verdict{Failed: true, Said: fmt.Sprintf("ended: %v: no reboot", context.Cause(ctx))}
	case err == nil:
		log.Debug("reboot-required command: exit 0, a reboot is required", logkey.Duration, took, logkey.Output, last)
		return Verdict{Required: true, Said: "exit 0: reboot required"}
	case errors.As(err, &exit) && exit.Exited():
		code := exit.ExitCode()
		if code == 126 || code == 127 {
			// The shell could not find or run the program: a broken setting, not a "no".
			log.Warn("reboot-required command cannot run: taken as no reboot required", logkey.Exit, code, logkey.Output, last)
			return Verdict{Failed: true, Said: fmt.Sprintf("cannot run (exit %d%s): no reboot", code, lastSaid(last))}
		}
		log.Debug("reboot-required command: no reboot required", logkey.Exit, code, logkey.Duration, took, logkey.Output, last)
		return Verdict{Said: fmt.Sprintf("exit %d: no reboot required", code)}
	case errors.As(err, &exit):
		log.Warn("reboot-required command was killed: taken as no reboot required", logkey.Cause, exit.String(), logkey.Output, last)
		return Verdict{Failed: true, Said: fmt.Sprintf("killed (%s): no reboot", exit)}
	default:
		log.Warn("reboot-required command failed: taken as no reboot required", logkey.Err, err, logkey.Output, last)
		return Verdict{Failed: true, Said: fmt.Sprintf("failed: %v: no reboot", err)}
	}
}

func lastSaid(last string) string {
	if last == "" {
		return ""
	}
	return ", " + fmt.Sprintf("%q", last)
}

// lastLine is the last line of output that is not blank.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n\r \t"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// boundedBuffer keeps the last max bytes written to it and reads everything, so the command
// never blocks on a full pipe.
type boundedBuffer struct {
	max int
	buf bytes.Buffer
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > b.max {
		p = p[len(p)-b.max:]
	}
	if over := b.buf.Len() + len(p) - b.max; over > 0 {
		b.buf.Next(over)
	}
	b.buf.Write(p)
	return n, nil
}

func (b *boundedBuffer) String() string { return b.buf.String() }
