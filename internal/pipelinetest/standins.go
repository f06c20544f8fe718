package pipelinetest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rebootmgr/rebootmgr/health"
)

// Clock is time that passes only when waited on: After moves it on by d and fires at once, so
// a settle, a stay-green period or a cooldown takes no time in a test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After moves the clock on by d and returns a channel that has fired.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

// Set puts the clock at t (a jump, forwards or back).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Health judges the services a test gives it, as the pipeline's health source would read them
// from Consul.
type Health struct {
	mu       sync.Mutex
	services []health.Service
	// others are the services of other nodes, by node, for Ruled.
	others map[string][]health.Service
	// Down is the set of reboots in flight the last check was given.
	down map[string]string
}

// Set gives the services to judge.
func (h *Health) Set(services ...health.Service) {
	h.mu.Lock()
	h.services = services
	h.mu.Unlock()
}

// Check judges node's services with down counted as failing.
func (h *Health) Check(_ context.Context, node string, down map[string]string) (health.Report, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
	return health.Evaluate(node, h.services, down), nil
}

// SetOf gives the services other nodes run, as Ruled reads them (a node not given runs the
// services given to Set that have an instance on it).
func (h *Health) SetOf(node string, services ...health.Service) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.others == nil {
		h.others = map[string][]health.Service{}
	}
	h.others[node] = services
}

// Ruled says whether node runs a service with a rule over the fleet (see health.FleetRule).
func (h *Health) Ruled(_ context.Context, node string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	services, given := h.others[node]
	for _, svc := range h.services {
		if !given && slices.ContainsFunc(svc.Instances, func(i health.Instance) bool { return i.Node == node }) {
			services = append(services, svc)
		}
	}
	return slices.ContainsFunc(services, func(s health.Service) bool { return health.FleetRule(s.Tags) }), nil
}

// Down is the set of reboots in flight the last check counted.
func (h *Health) Down() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// Service is one service tagged rebootmgr with tags, passing on every node named.
func Service(name string, tags []string, nodes ...string) health.Service {
	svc := health.Service{Name: name, Tags: append([]string{health.Tag}, tags...)}
	for _, n := range nodes {
		svc.Instances = append(svc.Instances, health.Instance{Node: n, ServiceID: name, Checks: []health.Check{{Node: n, CheckID: "service:" + name, Status: "passing"}}})
	}
	return svc
}

// Tasks records the phases run; During, when set, runs inside each phase (a test sets a stop
// flag or changes a limit there), and Fail makes a phase fail.
type Tasks struct {
	mu     sync.Mutex
	runs   []string
	During func(ctx context.Context, phase string) error
	Fail   map[string]error
}

// Validate finds nothing wrong.
func (t *Tasks) Validate() error { return nil }

// Run records phase and runs During.
func (t *Tasks) Run(ctx context.Context, phase string, _ bool) error {
	t.mu.Lock()
	t.runs = append(t.runs, phase)
	during, fail := t.During, t.Fail[phase]
	t.mu.Unlock()
	if during != nil {
		if err := during(ctx, phase); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	return fail
}

// Runs are the phases run so far, in order.
func (t *Tasks) Runs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.runs...)
}

// Rebooter counts the reboot commands it is asked to run; During, when set, runs as the command
// does (a test checks the state the command runs in).
type Rebooter struct {
	mu    sync.Mutex
	count int
	// Err is what the command returns.
	Err    error
	During func()
}

// Reboot counts, and runs During.
func (r *Rebooter) Reboot(context.Context) error {
	r.mu.Lock()
	r.count++
	during, err := r.During, r.Err
	r.mu.Unlock()
	if during != nil {
		during()
	}
	return err
}

// Count is how often the reboot command ran.
func (r *Rebooter) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Sentinel is a reboot-required command whose answer a test sets; it counts how often it was
// asked.
type Sentinel struct {
	Name string
	mu   sync.Mutex
	yes  bool
	asks int
}

// Say sets the answer: required or not.
func (s *Sentinel) Say(required bool) {
	s.mu.Lock()
	s.yes = required
	s.mu.Unlock()
}

// Ask answers as told, and counts.
func (s *Sentinel) Ask(context.Context) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asks++
	if s.yes {
		return true, "exit 0: reboot required"
	}
	return false, "exit 1: no reboot required"
}

// String names the command.
func (s *Sentinel) String() string { return s.Name }

// Asks is how often the command was asked.
func (s *Sentinel) Asks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asks
}
