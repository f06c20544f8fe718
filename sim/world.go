// Package sim is a deterministic simulator of a fleet: every node runs the real daemon loop
// (daemon.Stepper) and the real pipeline and store against an in-memory model of Consul's HTTP
// API (internal/consulmodel), each on a clock of its own. One goroutine runs at a time: the
// scheduler hands it the baton and waits until it parks again, at a request to Consul, a wait
// on its clock, or the end of its step; what runs next, among everything ready, is chosen by a
// seeded generator. The same seed and plan give the same trace, line for line. Faults and an
// operator's actions are items of the same schedule, and the fleet's promises are checked
// after every step (see check.go).
package sim

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// Epoch is where the simulation's true time starts.
var epoch = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// World is one simulated fleet.
type World struct {
	cfg    Config
	sched  scheduler
	model  *consulmodel.Model
	keys   store.Keys
	nodes  []*node
	hosts  []*node
	byName map[string]*node
	// byGroup are the indexes in nodes of each group's nodes, in order.
	byGroup map[string][]int
	// bySvc are the nodes running each service, in order.
	bySvc map[string][]*node
	// locks are the groups' lock records as last written (see afterWrite).
	locks map[string]lock.Record
	// fleetlock is the FleetLock server the hosts ask (see server).
	fleetlock     *fleetlock.Locks
	fleetlockNode *node
	yielded       chan struct{}
	dir           string
	trace         []string
	// violations found, in order; the run ends at the first.
	violations []string
	// steps done; reboots started.
	steps, reboots, faults int
	// asked: the nodes asked to reboot and not rebooted since, with when they were asked.
	asked map[string]time.Time
	// watchRequests are the requests the daemons' watches would have made (see deliver).
	watchRequests int
	// hcost is what the health watches' answers cost, with Config.HealthReads.
	hcost healthCost
	// asks: the waves of asks so far; askedAt, the fleet's requests at the first.
	asks, askedAt int
	// handoffs: the Consul requests of the fleet between one reboot's end and the next start.
	handoffs []int
	lastEnd  int
	// held is how many places each group's lock held at its last write.
	held map[string]int
	// shared: the instances of the service shared across groups.
	shared int
	// passedLive counts the nodes passed over in their queue while their daemon ran.
	passedLive int
	// missed are the nodes each group's queue held as having missed their turn at its last write.
	missed map[string]map[string]bool
	// queues are the groups' queues as the checks last read them (see queueWritten).
	queues map[string]*queueSeen
	// joining are the nodes asked at the first wave whose daemon has not ended a run since (see
	// observe); joinRequests the fleet's requests from that ask until none was left (-1 until
	// then): what it costs a fleet asked at once to sort itself into places and queues.
	joining      map[string]bool
	joinRequests int
	// largest is the largest value of rebootmgr's own records written in the run.
	largest int
	// pyNodes run the Python rebootmgr; pyReboots are their reboots, pyFindings what the Python
	// code itself did that the daemons cannot answer for (see pyFinding).
	pyNodes, pyReboots, pyFindings int
	// chk is what the checks of the queue's order, the clocks, the zones and the requests' rate
	// keep between steps (see checked).
	chk checked
}

// node is one machine: its name, group, zone, services and clock offset, and the daemon
// process running on it (nil while it is down).
type node struct {
	name, group, zone string
	// index is its place in World.nodes.
	index    int
	services []string
	offset   time.Duration
	proc     *proc
	gen      int
	bootID   string
	down     bool
	left     bool
	rebooted int
	// lastBoot is when it last came back from a reboot.
	lastBoot time.Time
	// Faults: until when its daemon is paused, Consul slow for it, its agent down; writes
	// still to refuse, and with which status.
	pausedUntil, slowUntil, agentDownUntil time.Time
	refuse, refuseStatus                   int
	// trouble is when a fault last kept its daemon from answering at once (its start included),
	// or will until.
	trouble time.Time
	// A FleetLock host: whether it wants a place (an update is waiting), and whether it is back
	// from its reboot and has not been told its place is given back (a Python node: whether its
	// marker names it).
	host, wants, finishing bool
	// py is the Python rebootmgr, on a node that runs it in place of the daemon (see python.go).
	py *python
}

// New builds the fleet of cfg; Run runs it.
func New(cfg Config) (*World, error) {
	cfg = cfg.withDefaults()
	dir, err := os.MkdirTemp("", "rebootmgr-sim-")
	if err != nil {
		return nil, fmt.Errorf("sim: a directory for the nodes' reboot notes: %w", err)
	}
	w := &World{
		cfg: cfg, model: consulmodel.New(), keys: store.Keys{Prefix: store.DefaultPrefix},
		byName: map[string]*node{}, byGroup: map[string][]int{}, bySvc: map[string][]*node{},
		locks: map[string]lock.Record{}, yielded: make(chan struct{}), dir: dir,
		asked: map[string]time.Time{}, held: map[string]int{}, lastEnd: -1, joinRequests: -1, missed: map[string]map[string]bool{},
		queues: map[string]*queueSeen{},
	}
	w.chk = newChecked()
	w.sched = scheduler{rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), now: epoch}
	w.model.After = w.after
	w.model.OnWrite = w.onWrite
	w.build()
	return w, nil
}

// after is the model's wait for a blocking query's wait time: never, here (no daemon of the
// simulation holds a blocking query; see simStore).
func (w *World) after(time.Duration) <-chan time.Time { return nil }

// Close removes what the run kept on disk.
func (w *World) Close() error { return os.RemoveAll(w.dir) }

// build registers the nodes, their groups, zones and services, and sets the groups' limits.
func (w *World) build() {
	cfg := w.cfg
	for i := range cfg.Nodes {
		n := &node{
			name:  fmt.Sprintf("n%04d", i+1),
			index: i,
			group: fmt.Sprintf("g%d", i%cfg.Groups+1),
			zone:  fmt.Sprintf("z%d", i%3+1),
		}
		n.offset = time.Duration(w.sched.rng.IntN(int(2*cfg.MaxSkew+1))) - cfg.MaxSkew
		n.services = []string{"svc-" + n.group}
		if cfg.ServiceSize > 0 {
			n.services[0] = fmt.Sprintf("svc-%s-%d", n.group, i/cfg.Groups/cfg.ServiceSize+1)
		}
		if cfg.SharedEvery > 0 && i%cfg.SharedEvery == 0 {
			n.services = append(n.services, "shared")
			w.shared++
		}
		w.shape(i, n)
		if cfg.BareEvery > 0 && i%cfg.BareEvery == cfg.BareEvery-1 {
			// A node with no service: no rule over the fleet.
			if cfg.SharedEvery > 0 && i%cfg.SharedEvery == 0 {
				w.shared--
			}
			n.services = nil
		}
		n.bootID = n.name + "-boot-0"
		for _, svc := range n.services {
			w.bySvc[svc] = append(w.bySvc[svc], n)
		}
		w.nodes = append(w.nodes, n)
		w.byName[n.name] = n
		w.byGroup[n.group] = append(w.byGroup[n.group], i)
	}
	// Registered once every node is built: the shared service's min_passing counts them all.
	for _, n := range w.nodes {
		w.register(n)
	}
	for g := range cfg.Groups {
		group := fmt.Sprintf("g%d", g+1)
		w.model.Put(w.keys.GroupLimit(group), cfg.LimitOf(group))
	}
	w.addPython()
	w.addHosts()
}

// register puts n into the catalog with its services, as its agent does at its start.
func (w *World) register(n *node) {
	meta := map[string]string{store.GroupMeta: n.group}
	if n.zone != "" {
		meta[store.ZoneMeta] = n.zone
	}
	w.model.Register(n.name, meta)
	for _, svc := range n.services {
		w.model.AddService(n.name, svc, svc, w.tags(svc), 80)
		w.model.SetCheck(n.name, "service:"+svc, svc, "passing")
	}
	w.registerDaemon(n)
}

// sharedMin is the min_passing of the service shared across groups: all but two of its
// instances.
func (w *World) sharedMin() int {
	return max(1, w.shared-2)
}

// notePath is where node's daemon notes its reboot command (a boot empties it).
func (w *World) notePath(n *node) string { return filepath.Join(w.dir, n.name+".reboot") }

// log adds a line to the trace.
func (w *World) log(node, format string, args ...any) {
	t := w.sched.now.Sub(epoch)
	line := fmt.Sprintf("%10.3fs %-6s %s", t.Seconds(), node, fmt.Sprintf(format, args...))
	w.trace = append(w.trace, line)
	if w.cfg.Verbose != nil {
		fmt.Fprintln(w.cfg.Verbose, line)
	}
}

// groupNodes are the nodes of group, by name.
func (w *World) groupNodes(group string) []*node {
	idx := w.byGroup[group]
	out := make([]*node, len(idx))
	for i, j := range idx {
		out[i] = w.nodes[j]
	}
	return out
}

// groupMachines are the nodes and the FleetLock hosts of group.
func (w *World) groupMachines(group string) []*node {
	out := w.groupNodes(group)
	for _, h := range w.hosts {
		if h.group == group {
			out = append(out, h)
		}
	}
	return out
}

// resume hands the baton to the goroutine parked on ch and waits until it parks again or ends.
func (w *World) resume(ch chan struct{}) {
	ch <- struct{}{}
	<-w.yielded
}

// awaitPark waits until the goroutine the scheduler just woke by another channel parks again or
// ends.
func (w *World) awaitPark() { <-w.yielded }

// Trace is the run's trace, one line a step.
func (w *World) Trace() []string { return slices.Clone(w.trace) }

func joinNames(ns []*node) string {
	names := make([]string, len(ns))
	for i, n := range ns {
		names[i] = n.name
	}
	return strings.Join(names, ",")
}

// rebootedAfter says whether n came back from a reboot since at.
func (n *node) rebootedAfter(at time.Time) bool { return !n.lastBoot.IsZero() && n.lastBoot.After(at) }
