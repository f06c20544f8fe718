package daemon

import (
	"context"
)

// Stepper is the daemon's loop for a caller that owns every wait: it is told when to look at
// what is due, and does it as the loop would, one thing at a time and in a fixed order. A
// simulator drives a fleet of daemons this way, each on its own clock, choosing the order of
// everything; the daemon's sources and the publisher of its presence are the caller's to
// stand in for.
type Stepper struct {
	l *loop
}

// Stepper starts the daemon's loop, without its sources: its first evaluation is due.
func (d *Daemon) Stepper() *Stepper {
	return &Stepper{l: d.start(nil)}
}

// Outcomes of Stepper.Step.
const (
	// Idle: nothing was due.
	Idle = iota
	// Stepped: one thing due was done; more may be.
	Stepped
	// Rebooting: the reboot started; the loop is over.
	Rebooting
	// Shutdown: ctx ended; the loop is over.
	Shutdown
)

// Step does the first thing due, in the loop's own order of its waits (a retry, a deadline,
// the passes) before the events: nothing when nothing is.
func (s *Stepper) Step(ctx context.Context) int {
	w, ok := s.due()
	if !ok {
		return Idle
	}
	switch s.l.handle(ctx, w) {
	case stepRebooting:
		s.l.stop()
		return Rebooting
	case stepShutdown:
		s.l.stop()
		return Shutdown
	}
	return Stepped
}

// Stop calls off the loop's waits.
func (s *Stepper) Stop() { s.l.stop() }

// due is the first of the loop's wakes that is ready, without waiting.
func (s *Stepper) due() (wake, bool) {
	l := s.l
	select {
	case <-l.again.C():
		return wakeAgain, true
	default:
	}
	select {
	case <-l.deadline.C():
		return wakeDeadline, true
	default:
	}
	select {
	case <-l.passes.due.C():
		return wakePasses, true
	default:
	}
	select {
	case <-l.d.Events.Wake():
		return wakeEvents, true
	default:
	}
	return 0, false
}
