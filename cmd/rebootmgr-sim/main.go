// Command rebootmgr-sim runs a deterministic simulation of a fleet of rebootmgr daemons against
// an in-memory Consul: every node runs the real daemon loop, pipeline and store; a seed chooses
// the order of every request and timer, and the faults. It checks the fleet's promises after
// every step; on a violation it shrinks the faults to the fewest that still break it, prints
// the seed and a trace a person can read, and exits 1. Its last line is a summary.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/sim"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A run keeps little alive beside what it allocates (every daemon decodes every answer
		// it reads): collecting four times less often spends memory a machine has to save a
		// tenth of the CPU. The trace does not depend on it.
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// flags are the command's settings once parsed (see newFlags).
type flags struct {
	cfg               sim.Config
	idle              sim.IdleConfig
	seed              *uint64
	seeds             *int
	drop, idleSizes   *string
	cpuProfile        *string
	verbose, noShrink *bool
	progress          *bool
}

// newFlags defines the command's flags on fs.
func newFlags(fs *flag.FlagSet) *flags {
	f := &flags{}
	cfg, idle := &f.cfg, &f.idle
	f.seed = fs.Uint64("seed", 1, "the first seed")
	f.seeds = fs.Int("seeds", 1, "how many seeds to run, from --seed on")
	fs.IntVar(&cfg.Nodes, "nodes", 12, "nodes in the fleet")
	fs.IntVar(&cfg.Groups, "groups", 2, "groups the nodes are in")
	fs.StringVar(&cfg.Limit, "limit", "2", "each group's limit (N, auto, P%, with per-zone=N), or several, comma-separated, that the groups take in turn")
	fs.IntVar(&cfg.Hosts, "hosts", 0, "FleetLock hosts, asking the FleetLock server for a place as Zincati does")
	fs.IntVar(&cfg.PythonEvery, "python-every", 0, "every Nth node runs the Python rebootmgr (0.0.32) in place of the daemon (0: none)")
	fs.BoolVar(&cfg.PythonAgentFaults, "python-agent-faults", false, "let the faults of an agent (restart, leave, refused writes) befall Python nodes too: a Python run they meet may hang, holding its lock")
	fs.IntVar(&cfg.BareEvery, "bare-every", 0, "leave every Nth node without a service (no rule over the fleet: alone under auto)")
	fs.IntVar(&cfg.ZonelessEvery, "zoneless-every", 0, "leave every Nth node without a zone (under a limit per zone it is a zone of its own)")
	fs.IntVar(&cfg.LocalOnlyEvery, "local-only-every", 0, "tag every Nth node's own service local_only instead of max_failing (no rule over the fleet: alone under auto)")
	fs.BoolVar(&cfg.HostIDsOfNodes, "host-ids-of-nodes", false, "with --hosts: name each FleetLock host as a node of its group whose daemon is registered (the server must refuse it)")
	fs.IntVar(&cfg.Flood, "flood", 0, "FleetLock ids of the longest length that join the first group's queue at once, a third into the faults' time, and never ask again")
	fs.IntVar(&cfg.Faults, "faults", 20, "faults injected in each run")
	fs.IntVar(&cfg.SharedEvery, "shared-every", 4, "every Nth node also runs a service shared across groups (0: none)")
	fs.IntVar(&cfg.Waves, "waves", 2, "how many times an operator asks every node to reboot")
	fs.IntVar(&cfg.Reboots, "reboots", 0, "end the run once this many reboots started, every promise kept so far (0: when every node asked rebooted)")
	fs.DurationVar(&cfg.RebootTime, "reboot-time", 2*time.Minute, "how long a machine takes to come back (from half of it to one and a half)")
	fs.IntVar(&cfg.MaxFailing, "max-failing", 1, "max_failing of each group's own service")
	fs.IntVar(&cfg.ServiceSize, "service-size", 0, "split each group's own service into services of at most this many of its nodes (0: one for the whole group)")
	fs.DurationVar(&cfg.MaxSkew, "max-skew", 2*time.Minute, "how far a node's clock may be from true time, either way")
	fs.DurationVar(&cfg.Cooldown, "cooldown", 0, "the daemons' --cooldown")
	fs.DurationVar(&cfg.StayGreen, "stay-green", 0, "the daemons' --stay-green")
	f.drop = fs.String("drop", "", "faults to leave out, by number (as a shrunk run prints them)")
	f.verbose = fs.Bool("v", false, "print every step of the trace as it happens")
	f.progress = fs.Bool("progress", false, "print to stderr how far a run got every simulated hour")
	fs.BoolVar(&cfg.StrictTurns, "strict-turns", false, "a node passed over in its queue while its daemon ran is a violation (counted as passed_live otherwise)")
	f.noShrink = fs.Bool("no-shrink", false, "report a violation as found, without shrinking it")
	f.cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	f.idleSizes = fs.String("idle", "", "instead of a roll: what an idle daemon costs, for each of these sizes of its service (10,100,1000)")
	fs.IntVar(&idle.Daemons, "idle-daemons", 2, "with --idle: the instances that run a daemon")
	fs.IntVar(&idle.Ticks, "idle-ticks", 0, "with --idle: how many ticks the daemons are measured (0: whole rounds of their turns at reading the service, an hour at least)")
	fs.DurationVar(&idle.Flap, "idle-flap", 0, "with --idle: how often a check of the service changes (0: never)")
	fs.DurationVar(&idle.Join, "idle-join", 0, "with --idle: when a node without a daemon joins the service (0: none), to see how long the daemons take to remember it")
	return f
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rebootmgr-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := newFlags(fs)
	seed, seeds, drop, verbose, noShrink, cpuProfile, idleSizes := f.seed, f.seeds, f.drop, f.verbose, f.noShrink, f.cpuProfile, f.idleSizes
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 64
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rebootmgr-sim: unexpected argument %q\n", fs.Arg(0))
		return 64
	}
	cfg, idle := f.cfg, f.idle
	var err error
	if cfg.Drop, err = parseDrop(*drop); err != nil {
		fmt.Fprintf(stderr, "rebootmgr-sim: --drop: %v\n", err)
		return 64
	}
	for _, form := range cfg.Limits() {
		if _, err := lock.ParseLimit(form); err != nil {
			fmt.Fprintf(stderr, "rebootmgr-sim: --limit: %v\n", err)
			return 64
		}
	}
	if *verbose {
		cfg.Verbose = stdout
	}
	if *f.progress {
		cfg.Progress = stderr
	}
	if cfg.SharedEvery == 0 {
		cfg.SharedEvery = -1
	}
	if *idleSizes != "" {
		idle.Seed = *seed
		return runIdle(idle, *idleSizes, stdout, stderr)
	}
	if *cpuProfile != "" {
		stop, err := profile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "rebootmgr-sim:", err)
			return 1
		}
		defer stop()
	}
	for s := *seed; s < *seed+uint64(*seeds); s++ {
		cfg.Seed = s
		res, trace, err := sim.One(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "rebootmgr-sim:", err)
			return 1
		}
		if len(res.Violations) == 0 {
			fmt.Fprintln(stdout, res.Summary())
			continue
		}
		if !*noShrink {
			if res, trace, err = shrink(cfg, res, stdout); err != nil {
				fmt.Fprintln(stderr, "rebootmgr-sim:", err)
				return 1
			}
		}
		for _, line := range sim.Readable(trace, 60) {
			fmt.Fprintln(stdout, line)
		}
		fmt.Fprintf(stdout, "violation: %s\n", res.Violations[0])
		fmt.Fprintln(stdout, res.Summary())
		return 1
	}
	return 0
}

// runIdle measures an idle daemon for each size of its service in sizes.
func runIdle(cfg sim.IdleConfig, sizes string, stdout, stderr io.Writer) int {
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "rebootmgr-sim: --idle: %q is not a number of instances\n", f)
			return 64
		}
		cfg.Instances = n
		res, err := sim.Idle(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "rebootmgr-sim:", err)
			return 1
		}
		fmt.Fprintln(stdout, res.Summary())
	}
	return 0
}

func parseDrop(s string) (map[int]bool, error) {
	drop := map[int]bool{}
	if s == "" {
		return drop, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a fault's number", f)
		}
		drop[n] = true
	}
	return drop, nil
}

// profile writes a CPU profile to path until stop. A run interrupted (SIGINT, SIGTERM) still
// leaves its profile whole: a long run is often profiled for its first minutes only.
func profile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(130)
		}
	}()
	return func() { signal.Stop(sigs); close(sigs); pprof.StopCPUProfile(); f.Close() }, nil
}

// shrink leaves out every fault of a failing run it can, and says how to replay what is left.
func shrink(cfg sim.Config, res sim.Result, stdout io.Writer) (sim.Result, []string, error) {
	shrunk, trace, dropped, err := sim.Shrink(cfg, res)
	if err != nil {
		return sim.Result{}, nil, err
	}
	fmt.Fprintf(stdout, "shrunk: %d of %d faults left out; replay with --seed %d --drop %s\n", len(dropped), cfg.Faults, cfg.Seed, sim.Dropped(dropped))
	return shrunk, trace, nil
}
