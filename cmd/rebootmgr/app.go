package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/flock"
	"github.com/rebootmgr/rebootmgr/health"
)

// Exit codes besides the gates' (see ending.List, where each gate's is).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 64
)

// errUsage marks a command line that cannot be run.
var errUsage = errors.New("usage")

// exitCode maps a run's error to the process's exit code: the gate it ended at (see
// ending.List), a usage error, or any other error.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, health.ErrMalformedTag):
		// The health gate failed on a service's definition, not on its health: an operator
		// must fix the tag.
		return exitError
	}
	if e, ok := ending.Of(err); ok {
		return e.Exit
	}
	return exitError
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error
	// flags is the command's flag set, as run parses with it (nil: it takes none).
	flags func() *flagSet
}

// flagsOf makes a command's flags field from its flag set's constructor.
func flagsOf[T any](build func() (*flagSet, T)) func() *flagSet {
	return func() *flagSet {
		fs, _ := build()
		return fs
	}
}

func commands() []command {
	return []command{
		{"reboot", "run the reboot pipeline once for this node: reboot it now if every gate allows it", runReboot, flagsOf(rebootFlagSet)},
		{"daemon", "run always: reboot this node whenever it is asked to and every gate allows it", runDaemon, flagsOf(daemonFlagSet)},
		{"fleetlock", "serve the FleetLock protocol (Zincati's reboot lock) on rebootmgr's lock and gates", runFleetlock, flagsOf(fleetlockFlagSet)},
		{"status", "the fleet at a glance: stop flag, lock holders, and what each node waits for", runStatus, flagsOf(statusFlagSet)},
		{"web", "a live, read-only web view of the fleet: groups, nodes, queues, the roll as a timeline", runWeb, flagsOf(webFlagSet)},
		{"check", "every gate of this node (or --node) with its evidence; changes nothing", runCheck, flagsOf(checkFlagSet)},
		mark("stop", "stop the whole fleet: nothing further starts anywhere"),
		mark("resume", "remove the fleet's stop flag"),
		mark("trigger", "ask a node (default: this one) to reboot"),
		mark("cancel", "withdraw a node's reboot request"),
		mark("disable", "keep a node from rebooting, with a reason"),
		mark("enable", "remove a node's disabled mark"),
		{"unlock", "release the reboot lock of a node that will not come back", runUnlock, flagsOf(unlockFlagSet)},
		{"limit", "show or set how many nodes of a group may reboot at once", runLimit, flagsOf(limitFlagSet)},
		{"forget", "stop counting a node gone for good as a failing member of its services", runForget, func() *flagSet { fs, _ := connFlagSet("forget"); return fs }},
		{"history", "a group's last reboots: who, when, how long, how it ended, who asked", runHistory, flagsOf(historyFlagSet)},
		{"config", "the settings every command uses here (configuration file, environment, flags) and where each comes from", runConfig, configFlagSet},
		// completion nodes and completion groups reach Consul as every command does.
		{"completion", "print shell completion for bash or zsh", runCompletion, func() *flagSet { fs, _ := connFlagSet("completion"); return fs }},
		{"man", "print the manual page, rebootmgr(8)", runMan, nil},
		{"version", "print the version", runVersion, nil},
	}
}

// run runs the command line and returns the exit code. Every non-zero exit prints one line
// to stderr that says why.
func run(ctx context.Context, args []string, e env, stdout, stderr io.Writer) int {
	name := ""
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			args = append([]string{"help"}, args[1:]...)
		case "-version", "--version":
			args = append([]string{"version"}, args[1:]...)
		}
		if !strings.HasPrefix(args[0], "-") {
			name, args = args[0], args[1:]
		}
	}
	if name == "" {
		return noCommand(args, stderr)
	}
	if name == "help" {
		if len(args) == 1 && args[0] != "help" && !strings.HasPrefix(args[0], "-") {
			// rebootmgr help COMMAND is rebootmgr COMMAND -h.
			return run(ctx, []string{args[0], "-h"}, e, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	var err error
	switch name {
	case "version", "completion", "man":
		// They read no setting: a broken configuration file does not keep them from working.
	default:
		e, err = e.withConfigFile()
	}
	if err != nil {
		fmt.Fprintf(stderr, "rebootmgr %s: %v\n", name, oneLine(err))
		return exitCode(err)
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args, e, stdout, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		if cerr := (commandLineError{}); errors.As(err, &cerr) {
			fmt.Fprintf(stderr, "%s  (rebootmgr %s -h: every flag)\n", synopsis(ctx, c), name)
		}
		if err != nil && aclRefused(err) {
			err = fmt.Errorf("%w; token: %s", err, e.tokenSource())
		}
		if err != nil {
			fmt.Fprintf(stderr, "rebootmgr %s: %v\n", name, oneLine(err))
		}
		return exitCode(err)
	}
	fmt.Fprintln(stderr, "Usage: rebootmgr COMMAND [flags]  (rebootmgr help: the commands)")
	fmt.Fprintln(stderr, unknownCommand(name))
	return exitUsage
}

// noCommand answers a command line without a command, args its flags, and returns the exit code.
// No command is never the reboot: a bare rebootmgr, typed to see what it does, gets the commands.
func noCommand(args []string, stderr io.Writer) int {
	usage(stderr)
	// The Python rebootmgr's command line has no command: its flags say what it was.
	var hints []string
	for _, a := range args {
		if hint := pythonFlagHint(a); hint != "" {
			hints = append(hints, hint)
		}
	}
	if len(hints) > 0 {
		fmt.Fprintf(stderr, "rebootmgr: no command given (rebootmgr reboot reboots this node), and %s\n", strings.Join(hints, "; and "))
		return exitUsage
	}
	fmt.Fprintln(stderr, "rebootmgr: no command given: rebootmgr reboot reboots this node (rebootmgr help: the commands)")
	return exitUsage
}

// synopsis is the first line of c's help: "Usage: rebootmgr status [--json]".
func synopsis(ctx context.Context, c command) string {
	var help strings.Builder
	_ = c.run(ctx, []string{"-h"}, env{lookup: func(string) (string, bool) { return "", false }}, &help, io.Discard)
	line, _, _ := strings.Cut(help.String(), "\n")
	return line
}

// mark is the command of the markCommand called name.
func mark(name, summary string) command {
	for _, m := range markCommands() {
		if m.name == name {
			return command{name: name, summary: summary, run: m.run, flags: flagsOf(m.flagSet)}
		}
	}
	panic("no mark command " + name)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `rebootmgr reboots the nodes of a Consul cluster one at a time, when every gate allows it.

Usage:
  rebootmgr COMMAND [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "rebootmgr COMMAND -h" for a command's flags. Every flag can also be set in the
environment as REBOOTMGR_<FLAG>, e.g. REBOOTMGR_DRY_RUN=1 or REBOOTMGR_TASKS_DIR=/etc/rebootmgr.
`)
}

// alsoIs is an error that says what err says, and is also what also is.
type alsoIs struct {
	err  error
	also error
}

func (e alsoIs) Error() string   { return e.err.Error() }
func (e alsoIs) Unwrap() []error { return []error{e.err, e.also} }

func oneLine(err error) string { return clip.OneLine(err.Error()) }

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func runVersion(_ context.Context, _ []string, _ env, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "rebootmgr", version)
	return nil
}

// holdNodeLock takes the per-node lock file for a command that acts.
func holdNodeLock(path string) (func(), error) {
	l, err := flock.Acquire(path)
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release() }, nil
}
