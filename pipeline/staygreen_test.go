package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
)

// flapping is health that fails while failing says so, at the time elapsed on clock since t0.
type flapping struct {
	*pipelinetest.Health
	clock   *pipelinetest.Clock
	t0      time.Time
	failing func(elapsed time.Duration) bool
}

func (f flapping) Check(ctx context.Context, node string, down map[string]string) (health.Report, error) {
	if f.failing != nil && f.failing(f.clock.Now().Sub(f.t0)) {
		return health.Evaluate(node, []health.Service{{Name: "galera", Tags: []string{health.Tag}, Instances: []health.Instance{
			{Node: node, ServiceID: "galera", Checks: []health.Check{{Node: node, CheckID: "service:galera", Status: "critical"}}},
		}}}, down), nil
	}
	return f.Health.Check(ctx, node, down)
}

// TestStayGreenWithAFlappingService: health must be seen passing at every look of the stay-green
// period (one a second): a check that fails at one look, even one that passes again after, or at
// the last, keeps the node from taking its place, and nothing reboots; seen passing all along,
// the node takes its place and reboots.
func TestStayGreenWithAFlappingService(t *testing.T) {
	const green = time.Minute
	between := func(from, to time.Duration) func(time.Duration) bool {
		return func(e time.Duration) bool { return e >= from && e < to }
	}
	for _, tt := range []struct {
		name    string
		failing func(time.Duration) bool
		says    string
	}{
		{"green all along", nil, ""},
		{"fails at one look midway", between(30*time.Second, 31*time.Second), "health while staying green"},
		{"fails at the first look only", between(time.Second, 2*time.Second), "health while staying green"},
		{"fails at the last look", between(green, green+time.Second), "green for " + green.String()},
		{"fails before it starts", between(0, time.Second), pipelinegate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			m.config.StayGreen = green
			m.store.SetTrigger("n1", "", true)
			p := m.pipeline()
			p.Health = flapping{Health: m.health, clock: m.clock, t0: m.clock.Now(), failing: tt.failing}
			res, err := p.Run(t.Context())
			if tt.says == "" {
				if err != nil || res.Outcome != pipeline.RebootStarted {
					t.Fatalf("%v %v, want the reboot started", res.Outcome, err)
				}
				return
			}
			if !errors.Is(err, ending.ErrUnhealthy) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("%v, want the health gate (%q)", err, tt.says)
			}
			if m.reboot.Count() != 0 || len(m.lock().Holders) != 0 {
				t.Fatalf("rebooted (%d) or took a place (%+v) with a flapping check", m.reboot.Count(), m.lock())
			}
		})
	}
}

// pipelinegate is how the health gate names itself at a run's first look.
const pipelinegate = "health, counting every reboot in flight"

// placeOpening is health that passes, and opens a place in the group's queue at opensAt into the
// stay-green period, then notes the node's entry in the queue a look later.
type placeOpening struct {
	*pipelinetest.Health
	store   *pipelinetest.Store
	clock   *pipelinetest.Clock
	t0      time.Time
	opensAt time.Duration
	opened  *time.Time
	entry   *lock.QueueEntry
}

func (f placeOpening) Check(ctx context.Context, node string, down map[string]string) (health.Report, error) {
	elapsed := f.clock.Now().Sub(f.t0)
	switch {
	case elapsed >= f.opensAt && f.opened.IsZero():
		*f.opened = f.clock.Now()
		if err := place.ChangeQueue(ctx, f.store, slog.New(slog.DiscardHandler), func(q lock.Queue) lock.Queue {
			q.Freed = f.clock.Now()
			return q
		}); err != nil {
			return health.Report{}, err
		}
	case !f.opened.IsZero() && elapsed >= f.opensAt+2*time.Second && f.entry.Node == "":
		v, err := f.store.View(ctx)
		if err != nil {
			return health.Report{}, err
		}
		if i, ok := v.Queue.Place(node); ok {
			*f.entry = v.Queue.Entries[i]
		}
	}
	return f.Health.Check(ctx, node, down)
}

// TestStayGreenAnswersAWake: a place given back while a node stays green wakes it with the front
// of the queue; it answers at its next look (its entry says so), as a daemon between runs does,
// so that it is not passed over as a node whose daemon is gone. Its keeps every 30s alone came
// too late for the 10s a node woken has to answer.
func TestStayGreenAnswersAWake(t *testing.T) {
	m := newMachine(t)
	m.config.StayGreen = time.Minute
	m.store.SetTrigger("n1", "", true)
	var opened time.Time
	var entry lock.QueueEntry
	p := m.pipeline()
	p.Health = placeOpening{Health: m.health, store: m.store, clock: m.clock, t0: m.clock.Now(), opensAt: 10 * time.Second, opened: &opened, entry: &entry}
	if res, err := p.Run(t.Context()); err != nil || res.Outcome != pipeline.RebootStarted {
		t.Fatalf("%v %v, want the reboot started", res.Outcome, err)
	}
	if entry.Node != "n1" || entry.Since.Before(opened) || entry.Since.Sub(opened) > 2*time.Second {
		t.Fatalf("the node's entry two looks after a place opened at %s: %+v, want it answered", opened.Format(time.TimeOnly), entry)
	}
}

// stopping is health that passes, and sets the fleet's stop flag at stopAt into the stay-green
// period.
type stopping struct {
	*pipelinetest.Health
	store  *pipelinetest.Store
	clock  *pipelinetest.Clock
	t0     time.Time
	stopAt time.Duration
}

func (f stopping) Check(ctx context.Context, node string, down map[string]string) (health.Report, error) {
	if f.clock.Now().Sub(f.t0) >= f.stopAt {
		f.store.SetStop("an operator", true)
	}
	return f.Health.Check(ctx, node, down)
}

// TestStayGreenHaltsAtAStop: a stop flag set while a node stays green halts it at its next
// look, before it takes a place.
func TestStayGreenHaltsAtAStop(t *testing.T) {
	m := newMachine(t)
	m.config.StayGreen = time.Minute
	m.store.SetTrigger("n1", "", true)
	p := m.pipeline()
	p.Health = stopping{Health: m.health, store: m.store, clock: m.clock, t0: m.clock.Now(), stopAt: 10 * time.Second}
	_, err := p.Run(t.Context())
	if !errors.Is(err, ending.ErrStopped) {
		t.Fatalf("%v, want the stop gate", err)
	}
	if m.reboot.Count() != 0 || len(m.lock().Holders) != 0 {
		t.Fatalf("rebooted (%d) or took a place (%+v) under a stop flag", m.reboot.Count(), m.lock())
	}
}
