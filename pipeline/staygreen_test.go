package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/pipeline"
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
