package daemon

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/watch"
)

// inline is a pipeline that answers at once, from a list, and counts its runs.
type inline struct {
	results []pipeline.Result
	errs    []error
	runs    int
}

func (p *inline) Run(context.Context) (pipeline.Result, error) {
	i := min(p.runs, len(p.results)-1)
	p.runs++
	return p.results[i], p.errs[i]
}
func (p *inline) LookAtLock(context.Context) (pipeline.Result, error) { return pipeline.Result{}, nil }
func (p *inline) LookAtQueue(context.Context) (pipeline.Result, error) {
	return pipeline.Result{}, nil
}
func (p *inline) PassTurns(context.Context, []lock.QueueEntry, int) ([]lock.QueueEntry, error) {
	return nil, nil
}

// TestStepperDoesWhatTheLoopDoes: the loop stepped from outside evaluates at its start, takes a
// burst of events as one batch, retries after trouble on its clock before it takes events, and
// ends when the reboot starts.
func TestStepperDoesWhatTheLoopDoes(t *testing.T) {
	trouble := errors.New("consul unreachable")
	p := &inline{
		results: []pipeline.Result{{}, {}, {}, {Outcome: pipeline.RebootStarted}},
		errs:    []error{nil, trouble, nil, nil},
	}
	clock := pipelinetest.NewManualClock(epoch)
	d := &Daemon{
		Pipeline: p, Events: watch.NewEvents(), Notifier: nopNotifier{}, Clock: clock,
		Logger: slog.New(slog.DiscardHandler),
		Retry:  func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) },
	}
	ctx := context.Background()
	s := d.Stepper()
	defer s.Stop()
	steps := []struct {
		name string
		do   func()
		want []int
		runs int
	}{
		{"the start evaluates", nil, []int{Stepped, Idle}, 1},
		{"a burst is one batch", func() {
			d.Events.Send(watch.Event{Source: watch.SourceTrigger})
			d.Events.Send(watch.Event{Source: watch.SourceTick})
		}, []int{Stepped, Idle}, 2},
		{"trouble retries on the clock, first", func() {
			clock.Advance(time.Second)
			d.Events.Send(watch.Event{Source: watch.SourceTick})
		}, []int{Stepped, Stepped, Idle}, 3},
		{"the reboot ends the loop", func() { d.Events.Send(watch.Event{Source: watch.SourceTrigger}) }, []int{Rebooting}, 4},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		for i, want := range st.want {
			if got := s.Step(ctx); got != want {
				t.Fatalf("%s: step %d is %d, want %d", st.name, i, got, want)
			}
		}
		if p.runs != st.runs {
			t.Fatalf("%s: %d runs, want %d", st.name, p.runs, st.runs)
		}
	}
}
