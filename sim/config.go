package sim

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// Config is a simulated fleet and the run over it.
type Config struct {
	Seed uint64
	// Nodes, in Groups (node i in group i%Groups+1, zone i%3+1); every SharedEvery-th node also
	// runs a service shared across groups, with min_passing all but two of its instances (4 when
	// zero; none when negative).
	Nodes, Groups, SharedEvery int
	// BareEvery, when set, leaves every BareEvery-th node without any service: no rule over the
	// fleet, so that under a limit of auto it reboots alone.
	BareEvery int
	// Hosts are FleetLock hosts, in the groups by turn (see hosts.go).
	Hosts int
	// PythonEvery, when set, runs the Python rebootmgr on every PythonEvery-th node in place of
	// the daemon (see python.go); the daemons then mark their reboots in its keys and watch
	// them, as --python-markers does.
	PythonEvery int
	// PythonAgentFaults lets the faults of a node's agent (a restart, a leave, refused writes)
	// befall Python nodes too, which they do not survive (see pyFault); left out otherwise.
	PythonAgentFaults bool
	// The fleet's rarer shapes (see shapes.go): every ZonelessEvery-th node has no zone, every
	// LocalOnlyEvery-th node's own service is tagged local_only (no rule over the fleet);
	// HostIDsOfNodes names each FleetLock host as a node of its group whose daemon is
	// registered; Flood FleetLock ids of the longest length join the first group's queue at
	// once and never ask again.
	ZonelessEvery, LocalOnlyEvery, Flood int
	HostIDsOfNodes                       bool
	// StrictTurns makes a node passed over in its queue while its daemon ran a violation, where
	// it is otherwise counted (see World.queueWritten).
	StrictTurns bool
	// ServerJumps are jumps of the FleetLock server's clock, beside the plan's faults: each By,
	// At after the start.
	ServerJumps []Jump
	// Limit is each group's limit as its key holds it ("2", "auto", "10%", "2 per-zone=1"), or
	// several, comma-separated, that the groups take in turn (g1 the first, g2 the second, …).
	Limit string
	// MaxFailing is the max_failing of each group's own service.
	MaxFailing int
	// ServiceSize splits each group's own service into services of at most that many of its
	// nodes, in the order they join the group (0: one service for the whole group), as a large
	// group's nodes are in cells or racks of their own.
	ServiceSize int
	// Faults is how many faults the run injects, spread over FaultTime.
	Faults    int
	FaultTime time.Duration
	// MaxSkew bounds how far a node's clock is from true time, either way.
	MaxSkew time.Duration
	// The daemons' settings.
	Interval, Deadline, Cooldown, StayGreen time.Duration
	// RebootTime is how long a machine takes to come back, from half of it to one and a half.
	RebootTime time.Duration
	// Waves is how many times an operator asks every node to reboot: at the start, then spread
	// over the faults' time (2 when zero).
	Waves int
	// Budget is the true time the whole run may take before the nodes still waiting are a
	// violation of liveness (zero: see Bound).
	Budget time.Duration
	// MaxSteps ends a run that has not ended by then, as a violation (5,000,000 when zero, or
	// 1,000 a node in a fleet larger than that).
	MaxSteps int
	// HealthReads makes the daemons' health watches read the model as watch.HealthSource does
	// (see healthwatch.go), each answer a request counted with its bytes, where they are
	// otherwise counted as two requests at each event they hear.
	HealthReads bool
	// Verbose, when set, hears every line of the trace as it is written.
	Verbose io.Writer
	// Reboots, when set, ends the run once that many reboots started, every promise kept so
	// far: what a join and the first hand-offs cost in a group too large to roll whole.
	Reboots int
	// Progress, when set, hears a line of how far the run got every simulated hour: a long run
	// says that it moves.
	Progress io.Writer
	// Drop are the faults of the plan left out (by their number), as shrinking leaves them.
	Drop map[int]bool
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Nodes, 12)
	def(&c.Groups, 2)
	if c.SharedEvery == 0 {
		c.SharedEvery = 4
	}
	def(&c.Waves, 2)
	def(&c.MaxFailing, 1)
	def(&c.MaxSteps, max(5_000_000, 1_000*c.Nodes))
	if c.Limit == "" {
		c.Limit = "2"
	}
	defD(&c.FaultTime, 30*time.Minute)
	defD(&c.Interval, 5*time.Minute)
	defD(&c.Deadline, 30*time.Minute)
	defD(&c.RebootTime, 2*time.Minute)
	if c.MaxSkew < 0 {
		c.MaxSkew = 0
	}
	return c
}

// Limits are the forms of limit the groups take in turn (see Limit).
func (c Config) Limits() []string {
	forms := strings.Split(c.Limit, ",")
	for i := range forms {
		forms[i] = strings.TrimSpace(forms[i])
	}
	return forms
}

// LimitOf is the limit group (g1, g2, …) starts with.
func (c Config) LimitOf(group string) string {
	forms := c.Limits()
	n, err := strconv.Atoi(strings.TrimPrefix(group, "g"))
	if err != nil || n < 1 {
		return forms[0]
	}
	return forms[(n-1)%len(forms)]
}

// Jump is a jump of a clock By, At after the start.
type Jump struct{ At, By time.Duration }
