package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// What the fleet benchmarks share: the bound the rules put on a roll, a monitor that holds
// every state of the fleet's record of holders against those rules, and a roll driver that
// asks every node to reboot at once and plays each machine's reboot as a fixed time down.

// ruleCap is one rule's bound on the reboots in flight at once among nodes: a service's quorum
// rule (every reboot in flight counts as a failing instance, and a node goes while the rule
// holds with its own instance passing), or a group's limit.
type ruleCap struct {
	what  string
	nodes map[string]bool
	cap   int
}

// rounds is how many reboots of the rule's nodes must follow one another at the least: n
// reboots of equal length, at most cap at a time, take ceil(n/cap) of them end to end.
func (c ruleCap) rounds() int { return (len(c.nodes) + c.cap - 1) / c.cap }

// rollCaps are the bounds the rules of specs and the groups' limits put on reboots in flight:
//
//   - max_failing=M: a node goes while at most M others are in flight, so M+1 at once;
//   - min_passing=P of n instances: a node goes while at least P pass, its own included, so
//     n-P+1 at once;
//   - no quorum tag: every instance must pass, so one at a time; local_only: no bound;
//   - a group's limit N (a share: what it comes to); auto: the rules above decide.
func rollCaps(b *testing.B, specs []fleettest.Spec, limits map[string]lock.Limit) []ruleCap {
	b.Helper()
	type svc struct {
		tags  []string
		nodes map[string]bool
	}
	services := map[string]*svc{}
	groups := map[string]map[string]bool{}
	for _, s := range specs {
		if groups[s.Group] == nil {
			groups[s.Group] = map[string]bool{}
		}
		groups[s.Group][s.Name] = true
		for _, sv := range s.Services {
			if services[sv.Name] == nil {
				services[sv.Name] = &svc{tags: sv.Tags, nodes: map[string]bool{}}
			}
			services[sv.Name].nodes[s.Name] = true
		}
	}
	var caps []ruleCap
	for _, name := range slices.Sorted(maps.Keys(services)) {
		s := services[name]
		rules, err := health.ParseRules(s.tags)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		if rules.LocalOnly {
			continue
		}
		n, c := len(s.nodes), 1
		if rules.Quorum() {
			c = n
			if rules.MaxFailing >= 0 {
				c = min(c, rules.MaxFailing+1)
			}
			if rules.MinPassing >= 0 {
				c = min(c, n-rules.MinPassing+1)
			}
		}
		if c < 1 {
			b.Fatalf("service %s (%s) on %d nodes lets none of them reboot", name, rules, n)
		}
		caps = append(caps, ruleCap{what: fmt.Sprintf("service %s (%s, %d instances)", name, rules, n), nodes: s.nodes, cap: c})
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		l, ok := limits[g]
		if !ok {
			l = lock.One
		}
		if l.Auto {
			continue
		}
		caps = append(caps, ruleCap{what: fmt.Sprintf("group %s (limit %s, %d nodes)", g, l, len(groups[g])), nodes: groups[g], cap: l.Places(len(groups[g]), true)})
	}
	return caps
}

// rollBound is the fewest reboot lengths end to end in which the fleet of specs can roll once
// under caps: the most rounds any one rule needs (every reboot taking the same time, no rule
// lets the nodes it bounds finish sooner). It says how it came to it.
func rollBound(specs []fleettest.Spec, caps []ruleCap) (int, string) {
	var b strings.Builder
	rounds := 1
	for _, c := range caps {
		fmt.Fprintf(&b, "  %s: at most %d in flight, %d reboots: ceil(%d/%d) = %d rounds\n", c.what, c.cap, len(c.nodes), len(c.nodes), c.cap, c.rounds())
		rounds = max(rounds, c.rounds())
	}
	fmt.Fprintf(&b, "  bound: the most of these, %d rounds of one reboot each (%d reboots in all)\n", rounds, len(specs))
	return rounds, b.String()
}

// rollMonitor follows the fleet's record of holders and the groups' lock records with blocking
// queries on rebootmgr's prefix (consistent reads through the server's agent), and holds every
// state it sees against the caps: no rule may ever have more nodes in flight than it bounds.
// Each write of the fleet's record adds or removes one holder, so two states seen one after
// the other that differ by more than one mean states were missed: the monitor then holds their
// union against the caps (more in flight is never allowed where fewer is not), and counts the
// miss.
type rollMonitor struct {
	b      *testing.B
	caps   []ruleCap
	groups []string

	mu      sync.Mutex
	index   uint64 // the fleet's record's ModifyIndex last seen
	holders map[string]string
	since   map[string]time.Time // when each holder took its place (its lock entry)
	// held are the finished holds: the node, and from its place taken to its release seen.
	held []hold
	// order is the nodes in the order their places were seen taken.
	order      []string
	versions   int
	missed     int
	most       map[string]int
	mostAll    int
	violations []string
	lastChange time.Time
	onTaken    func(node string)
	onReleased func(node string)
	stop       func()
}

type hold struct {
	node       string
	from, till time.Time
}

// watchRoll starts a monitor of fleet's locks; it ends with the benchmark.
func watchRoll(b *testing.B, fleet *fleettest.Fleet, caps []ruleCap) *rollMonitor {
	m := &rollMonitor{b: b, caps: caps, holders: map[string]string{}, since: map[string]time.Time{}, most: map[string]int{}}
	for g := range fleet.Groups() {
		m.groups = append(m.groups, g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.stop = func() { cancel(); <-done }
	b.Cleanup(m.stop)
	kv := fleet.Nodes[0].KV()
	keys := store.Keys{Prefix: store.DefaultPrefix}
	go func() {
		defer close(done)
		var index uint64
		for ctx.Err() == nil {
			pairs, meta, err := kv.List(keys.Prefix+"/", (&api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second, RequireConsistent: true}).WithContext(ctx))
			if err != nil {
				select {
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			m.see(time.Now(), pairs, keys)
			if index = meta.LastIndex; index == 0 {
				index = 1
			}
		}
	}()
	return m
}

// see takes one read of rebootmgr's keys.
func (m *rollMonitor) see(now time.Time, pairs api.KVPairs, keys store.Keys) {
	byKey := map[string]*api.KVPair{}
	for _, p := range pairs {
		byKey[p.Key] = p
	}
	fleet := lock.Fleet{Holders: map[string]string{}}
	var index uint64
	if p := byKey[keys.Holders()]; p != nil {
		var err error
		if fleet, err = lock.DecodeFleet(p.Value); err != nil {
			m.b.Errorf("fleet's record of holders: %v", err)
			return
		}
		index = p.ModifyIndex
	}
	since := map[string]time.Time{}
	inGroups := map[string]string{}
	for _, g := range m.groups {
		p := byKey[keys.GroupLock(g)]
		if p == nil {
			continue
		}
		rec, err := lock.Decode(p.Value)
		if err != nil {
			m.b.Errorf("lock record of group %s: %v", g, err)
			return
		}
		for _, h := range rec.Holders {
			since[h.Node] = h.Since
			inGroups[h.Node] = g
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if fmt.Sprint(inGroups) != fmt.Sprint(fleet.Holders) {
		m.violations = append(m.violations, fmt.Sprintf("the fleet's record of holders %v is not the groups' %v", fleet.Holders, inGroups))
	}
	if index == m.index {
		return
	}
	m.index = index
	m.versions++
	var added, removed []string
	for n := range fleet.Holders {
		if _, ok := m.holders[n]; !ok {
			added = append(added, n)
		}
	}
	for n := range m.holders {
		if _, ok := fleet.Holders[n]; !ok {
			removed = append(removed, n)
		}
	}
	judged := fleet.Holders
	if len(added)+len(removed) > 1 {
		m.missed++
		judged = maps.Clone(fleet.Holders)
		maps.Copy(judged, m.holders)
	}
	for _, c := range m.caps {
		var in []string
		for n := range judged {
			if c.nodes[n] {
				in = append(in, n)
			}
		}
		m.most[c.what] = max(m.most[c.what], len(in))
		if len(in) > c.cap {
			slices.Sort(in)
			m.violations = append(m.violations, fmt.Sprintf("%s: %d in flight (%s), at most %d allowed", c.what, len(in), strings.Join(in, ", "), c.cap))
		}
	}
	m.mostAll = max(m.mostAll, len(judged))
	m.lastChange = now
	for _, n := range removed {
		m.held = append(m.held, hold{node: n, from: m.since[n], till: now})
		delete(m.since, n)
		if m.onReleased != nil {
			m.onReleased(n)
		}
	}
	slices.SortFunc(added, func(a, b string) int { return since[a].Compare(since[b]) })
	for _, n := range added {
		m.since[n] = since[n]
		if m.since[n].IsZero() {
			m.since[n] = now
		}
		m.order = append(m.order, n)
		if m.onTaken != nil {
			m.onTaken(n)
		}
	}
	m.holders = maps.Clone(fleet.Holders)
}

// state is the holders as last seen and when they last changed.
func (m *rollMonitor) state() (holders int, last time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.holders), m.lastChange
}

// check fails the benchmark if a rule was broken.
func (m *rollMonitor) check() {
	m.b.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.violations) > 0 {
		m.b.Fatalf("rules broken during the roll:\n%s", strings.Join(m.violations, "\n"))
	}
}

// fleetRoll drives a fleet's daemons through rolls: each daemon talks to its node's agent at
// addrs[i] (a metering proxy).
type fleetRoll struct {
	b      *testing.B
	fleet  *fleettest.Fleet
	addrs  []string
	reboot time.Duration

	// busy is how many of the machine's cores were busy during the last roll, on average (the
	// fleet, and whatever else the machine ran).
	busy float64

	mu   sync.Mutex
	logs map[string][]string
}

// machineCPU reads the machine's busy and total CPU time, in clock ticks (/proc/stat).
func machineCPU(b *testing.B) (busy, total int64) {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

func (r *fleetRoll) start(i int) {
	r.fleet.Nodes[i].Start("--consul-addr", r.addrs[i])
}

// startAll starts every node's daemon, a few at a time.
func (r *fleetRoll) startAll() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range r.fleet.Nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.start(i)
		}()
	}
	wg.Wait()
}

// requestAll asks every node to reboot at once: their reboot_required keys in transactions of
// up to 64 (Consul's most operations in one).
func (r *fleetRoll) requestAll() {
	r.b.Helper()
	var ops api.TxnOps
	flush := func() {
		if len(ops) == 0 {
			return
		}
		ok, resp, _, err := r.fleet.Nodes[0].Agent.Client.Txn().Txn(ops, nil)
		if err != nil || !ok {
			r.b.Fatalf("request the reboots: %v %+v", err, resp)
		}
		ops = nil
	}
	for _, n := range r.fleet.Nodes {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: n.Keys().RebootRequired(n.Name)}})
		if len(ops) == 64 {
			flush()
		}
	}
	flush()
}

// roll asks every node to reboot at once and plays each reboot: when a node's reboot command
// has run, its daemon is killed at once (the machine goes down), and r.reboot later the machine
// has a new boot id and its daemon starts again, as systemd would start it. It returns when
// every node has rebooted and the last holder has given its place back: the time from the
// requests to the last release the monitor saw.
func (r *fleetRoll) roll(m *rollMonitor) time.Duration {
	r.b.Helper()
	nodes := r.fleet.Nodes
	before := make([]int, len(nodes))
	for i, n := range nodes {
		before[i] = n.RebootCount()
	}
	rebooted := make([]bool, len(nodes))
	var boots sync.WaitGroup
	busyBefore, allBefore := machineCPU(r.b)
	began := time.Now()
	r.requestAll()
	progress := time.Now()
	for finished := 0; finished < len(nodes); {
		if time.Since(progress) > 2*time.Minute {
			var waiting []string
			for i, n := range nodes {
				if !rebooted[i] {
					waiting = append(waiting, n.Name)
				}
			}
			m.mu.Lock()
			holders := maps.Clone(m.holders)
			m.mu.Unlock()
			for n := range holders {
				for _, node := range nodes {
					if node.Name == n {
						r.b.Logf("daemon log of %s:\n%s", n, node.Daemon.Log)
					}
				}
			}
			r.b.Fatalf("no reboot for two minutes after %d of %d; holders %v; not rebooted: %v", finished, len(nodes), holders, waiting)
		}
		for i, n := range nodes {
			if rebooted[i] || n.RebootCount() == before[i] {
				continue
			}
			rebooted[i] = true
			finished++
			progress = time.Now()
			n.Daemon.Kill9()
			r.keepLog(n.Name, n.Daemon.Log)
			boots.Add(1)
			go func() {
				defer boots.Done()
				time.Sleep(r.reboot) // the machine is down
				n.Boot()
				r.start(i)
			}()
		}
		time.Sleep(5 * time.Millisecond)
	}
	boots.Wait()
	// The last nodes finish their post-boot part.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if h, _ := m.state(); h == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.b.Fatal("holders left two minutes after the last boot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, last := m.state()
	busy, all := machineCPU(r.b)
	r.busy = float64(busy-busyBefore) / float64(all-allBefore) * float64(runtime.NumCPU())
	if dir := os.Getenv("REBOOTMGR_BENCH_LOGS"); dir != "" {
		for _, n := range nodes {
			r.keepLog(n.Name, n.Daemon.Log)
			if err := os.WriteFile(filepath.Join(dir, n.Name+".log"), []byte(strings.Join(r.logs[n.Name], "")), 0o644); err != nil {
				r.b.Fatal(err)
			}
		}
	}
	return last.Sub(began)
}

// keepLog keeps a daemon's log, for REBOOTMGR_BENCH_LOGS (a directory: every daemon's log of
// the roll goes there, one file a node).
func (r *fleetRoll) keepLog(node string, l *fleettest.Log) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs == nil {
		r.logs = map[string][]string{}
	}
	r.logs[node] = append(r.logs[node], l.String())
}
