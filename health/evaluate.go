package health

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Check is one Consul health check of a service instance or of its node.
type Check struct {
	Node    string
	CheckID string
	Name    string
	Status  string // passing, warning, critical, maintenance
	Output  string
	Type    string // script, http, tcp, ttl, ... ("" for node checks such as serfHealth)
	// Interval, Timeout and TTL come from the check's definition; zero where it has none.
	Interval time.Duration
	Timeout  time.Duration
	TTL      time.Duration
}

// Instance is one instance of a service: its service checks and its node's checks.
type Instance struct {
	Node      string
	ServiceID string
	// Tags are this instance's own tags.
	Tags   []string
	Checks []Check
}

// Service is a service this node runs with the tag "rebootmgr", and all its instances in
// the cluster.
type Service struct {
	Name string
	// Tags are the tags of this node's instance: they carry the rules.
	Tags      []string
	Instances []Instance
	// Members are the nodes remembered running the service: one that has no instance in the
	// catalog (it left the cluster cleanly, or its service was deregistered) is a failing
	// instance until an operator forgets it.
	Members []string
}

// ServiceReport is the verdict on one service.
type ServiceReport struct {
	Name    string
	Rules   Rules
	Passing int
	Total   int
	// Failing names each instance that does not pass and why.
	Failing []string
	// Malformed is why the service's rule tags cannot be read (it wraps ErrMalformedTag); nil
	// when they can. Such a service never passes.
	Malformed error
	// AtOnce is how many of its instances its rules let reboot at once (see Rules.AtOnce; 0
	// when its tags cannot be read).
	AtOnce int
	// FailingOn are the nodes of the instances that do not pass, in Failing's order.
	FailingOn []string
	// Disagree names each instance on another node whose own tags give other rules than this
	// node's, with its rules (see disagreeing).
	Disagree []string
	// Problems are the service's part of the report's Problems.
	Problems []string
}

// Report is the verdict on a node's services.
type Report struct {
	Node     string
	Services []ServiceReport
	// Problems are the reasons the node may not reboot now; empty when it may.
	Problems []string
	// Settle is how long the considered checks need to run again: the longest
	// interval+timeout (or TTL) among them.
	Settle time.Duration
	// RoomOnly says that the rules fail only for the reboots in flight: with none, every rule
	// would hold. The node waits for room, not for its services to recover.
	RoomOnly bool
	// HeldBy are the nodes in flight whose return, healthy, would let every rule hold: set
	// only when nothing else fails (every instance that fails is on a node in flight). Sorted.
	HeldBy []string
}

// OK reports whether every rule holds.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Reason is all problems in one line.
func (r Report) Reason() string { return strings.Join(r.Problems, "; ") }

// Malformed is why the rule tags of some services cannot be read, naming each service (it wraps
// ErrMalformedTag): a problem of configuration, not of health. Nil when every service's can.
func (r Report) Malformed() error {
	var errs []error
	for _, s := range r.Services {
		if s.Malformed != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Name, s.Malformed))
		}
	}
	return errors.Join(errs...)
}

// NoteExcused adds a problem to a report that fails when key, the Python rebootmgr's
// ignore_failed_checks, names nodes of failing instances: the Python rebootmgr ignored their
// checks, rebootmgr counts them, and the line says what to do instead.
func (r *Report) NoteExcused(key string, nodes []string) {
	var named []string
	for _, s := range r.Services {
		for _, n := range s.FailingOn {
			if slices.Contains(nodes, n) && !slices.Contains(named, n) {
				named = append(named, n)
			}
		}
	}
	if r.OK() || len(named) == 0 {
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf("%s names %s, whose failing checks the Python rebootmgr ignored: rebootmgr counts them (let the service's tags allow for it, max_failing=N or min_passing=N, or fix the check)",
		key, strings.Join(named, ", ")))
}

// Scarcity is the fewest reboots at once any of the node's services allows (see
// ServiceReport.AtOnce); math.MaxInt when none bounds them.
func (r Report) Scarcity() int {
	n := math.MaxInt
	for _, s := range r.Services {
		n = min(n, s.AtOnce)
	}
	return n
}

// Roomier are the node's services that allow more reboots at once than its scarcest one, and
// are bounded at all: the services it shares with nodes whose own rules leave them more room.
func (r Report) Roomier() []string {
	least := r.Scarcity()
	var out []string
	for _, s := range r.Services {
		if s.AtOnce > least && s.AtOnce != math.MaxInt {
			out = append(out, s.Name)
		}
	}
	return out
}

// FleetRuled says whether a service of the report has a rule over the fleet (see FleetRule):
// its rules were read, and are not local_only.
func (r Report) FleetRuled() bool {
	return slices.ContainsFunc(r.Services, func(s ServiceReport) bool { return s.Malformed == nil && !s.Rules.LocalOnly })
}

// Runs says whether the report judged service.
func (r Report) Runs(service string) bool {
	return slices.ContainsFunc(r.Services, func(s ServiceReport) bool { return s.Name == service })
}

// Default check timeouts of Consul when a definition gives none.
const (
	defaultScriptTimeout = 30 * time.Second
	defaultCheckTimeout  = 10 * time.Second
)

// Evaluate applies the rules of each service to its instances as they are now, this node's
// own included. An instance passes when all its checks, service and node checks, pass
// ("warning" fails). The quorum rules are those of this node's instance; whether a node's
// maintenance counts is each instance's own: Consul's node maintenance check is ignored for
// this node (rebootmgr puts it there itself) and for an instance tagged ignore_maintenance
// (its owner says it serves in maintenance, which only it can say). An instance on a node in down
// (a reboot in flight; the value says why) fails whatever its checks say, and so does a member
// with no instance in the catalog.
func Evaluate(node string, services []Service, down map[string]string) Report {
	rep := evaluate(node, services, down)
	if !rep.OK() && len(down) > 0 {
		rep.RoomOnly = evaluate(node, services, nil).OK()
		if evaluate(node, returned(services, down), nil).OK() {
			rep.HeldBy = inFlightIn(rep, down)
		}
	}
	return rep
}

// returned is services as they would be once every node in down is back and healthy: each of
// its instances passing, and a member of those with no instance in the catalog back in it.
func returned(services []Service, down map[string]string) []Service {
	out := make([]Service, 0, len(services))
	for _, svc := range services {
		back := svc
		back.Instances = make([]Instance, 0, len(svc.Instances))
		for _, inst := range withMissing(svc) {
			if _, ok := down[inst.Node]; ok {
				checks := make([]Check, len(inst.Checks))
				for i, c := range inst.Checks {
					c.Status = "passing"
					checks[i] = c
				}
				inst.Checks = checks
			}
			back.Instances = append(back.Instances, inst)
		}
		back.Members = nil
		out = append(out, back)
	}
	return out
}

// inFlightIn are the nodes of down whose instances rep counts failing, sorted.
func inFlightIn(rep Report, down map[string]string) []string {
	var out []string
	for _, sr := range rep.Services {
		for _, n := range sr.FailingOn {
			if _, ok := down[n]; ok && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

func evaluate(node string, services []Service, down map[string]string) Report {
	rep := Report{Node: node}
	for _, svc := range services {
		sr, problems := evaluateService(node, svc, down)
		sr.Problems = problems
		rep.Services = append(rep.Services, sr)
		rep.Problems = append(rep.Problems, problems...)
		for _, inst := range svc.Instances {
			for _, c := range inst.Checks {
				rep.Settle = max(rep.Settle, rerun(c))
			}
		}
	}
	return rep
}

func evaluateService(node string, svc Service, down map[string]string) (ServiceReport, []string) {
	rules, err := ParseRules(svc.Tags)
	if err != nil {
		return ServiceReport{Name: svc.Name, Total: len(svc.Instances), Malformed: err}, []string{fmt.Sprintf("service %s: %v", svc.Name, err)}
	}
	instances := withMissing(svc)
	sr := ServiceReport{Name: svc.Name, Rules: rules, Total: len(instances), AtOnce: rules.AtOnce(len(instances)), Disagree: disagreeing(node, svc.Name, rules, instances)}
	if rules.LocalOnly {
		all := instances
		instances = nil
		for _, inst := range all {
			if inst.Node == node {
				instances = append(instances, inst)
			}
		}
		sr.Total = len(instances)
	}
	var problems []string
	own := 0
	for _, inst := range instances {
		failing := failingChecks(inst, node)
		if why, ok := down[inst.Node]; ok && inst.Node != node {
			failing = append([]string{"reboot in flight: " + why}, failing...)
		}
		if inst.Node == node {
			own++
		}
		if len(failing) == 0 {
			sr.Passing++
			continue
		}
		why := fmt.Sprintf("%s: %s", instanceName(svc.Name, inst), strings.Join(failing, ", "))
		sr.Failing = append(sr.Failing, why)
		sr.FailingOn = append(sr.FailingOn, inst.Node)
		if inst.Node == node {
			problems = append(problems, fmt.Sprintf("%s on this node: %s", svc.Name, why))
		}
	}
	if own == 0 {
		problems = append(problems, fmt.Sprintf("%s: this node's instance is not in Consul's health catalog", svc.Name))
	}
	failing := sr.Total - sr.Passing
	detail := func() string {
		if len(sr.Failing) == 0 {
			return ""
		}
		return " (" + strings.Join(sr.Failing, "; ") + ")"
	}
	switch {
	case !rules.Quorum():
		if failing > 0 && len(problems) == 0 {
			problems = append(problems, fmt.Sprintf("%s: every instance must pass, %d/%d passing%s", svc.Name, sr.Passing, sr.Total, detail()))
		}
	default:
		if rules.MinPassing >= 0 && sr.Passing < rules.MinPassing {
			problems = append(problems, fmt.Sprintf("%s: min_passing=%d, passing %d/%d%s", svc.Name, rules.MinPassing, sr.Passing, sr.Total, detail()))
		}
		if rules.MaxFailing >= 0 && failing > rules.MaxFailing {
			problems = append(problems, fmt.Sprintf("%s: max_failing=%d, failing %d/%d%s", svc.Name, rules.MaxFailing, failing, sr.Total, detail()))
		}
	}
	return sr, problems
}

// missingCheck is the check an instance gone from the catalog fails.
const missingCheck = "rebootmgr:missing"

// withMissing is the service's instances, plus one failing instance for each member that has
// none in the catalog, in the members' order. The nodes with an instance are looked up in a
// set: a service of thousands of instances, each a member, is judged at every look of every
// node that waits on it.
func withMissing(svc Service) []Instance {
	out := svc.Instances
	if len(svc.Members) == 0 {
		return out
	}
	present := make(map[string]bool, len(svc.Instances))
	for _, i := range svc.Instances {
		present[i.Node] = true
	}
	for _, m := range svc.Members {
		if !present[m] {
			out = append(out[:len(out):len(out)], Instance{Node: m, Checks: []Check{{Node: m, CheckID: missingCheck, Status: "critical",
				Output: fmt.Sprintf("gone from Consul's catalog, counted as failing (rebootmgr forget %s %s once it is gone for good)", m, svc.Name)}}})
		}
	}
	return out
}

// disagreeing names each instance of service on another node, tagged rebootmgr, whose own tags
// give other rules than rules (this node's), with its rules or why they cannot be read. The
// quorum rules judged by stay this node's; an instance's ignore_maintenance is its own.
func disagreeing(node, service string, rules Rules, instances []Instance) []string {
	var out []string
	for _, inst := range instances {
		if inst.Node == node || !slices.Contains(inst.Tags, Tag) {
			continue
		}
		theirs, err := ParseRules(inst.Tags)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", instanceName(service, inst), err))
		case theirs != rules:
			out = append(out, fmt.Sprintf("%s: %s", instanceName(service, inst), theirs))
		}
	}
	return out
}

// ignoresMaintenance says whether an instance's own tags say that it serves while its node is
// in maintenance (as the Python rebootmgr reads it: the tag alone).
func ignoresMaintenance(inst Instance) bool {
	return slices.Contains(inst.Tags, tagIgnoreMaintenance)
}

func failingChecks(inst Instance, node string) []string {
	var out []string
	for _, c := range inst.Checks {
		if c.Status == "passing" {
			continue
		}
		if c.CheckID == NodeMaintenanceCheck && (inst.Node == node || ignoresMaintenance(inst)) {
			continue
		}
		if c.CheckID == missingCheck {
			out = append(out, c.Output)
			continue
		}
		s := fmt.Sprintf("check %q %s", c.CheckID, c.Status)
		if out := firstLine(c.Output); out != "" {
			s += ": " + out
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func instanceName(service string, inst Instance) string {
	if inst.ServiceID == "" || inst.ServiceID == service {
		return inst.Node
	}
	return inst.Node + "/" + inst.ServiceID
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	const maxLen = 120
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}

// rerun is how long a check needs to produce a fresh result.
func rerun(c Check) time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	if c.Interval <= 0 {
		return 0
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultCheckTimeout
		if c.Type == "script" {
			timeout = defaultScriptTimeout
		}
	}
	return c.Interval + timeout
}
