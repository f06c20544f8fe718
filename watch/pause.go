package watch

import (
	"context"
	"sync"
)

// Pause holds the queries of the sources given it while it is set: a blocking query that
// returned is not asked again until the pause is lifted, and then with the index it last saw,
// so that a change made meanwhile returns at once. A query in flight is never cancelled: Consul
// would hold its connection until its wait ends anyway. The first query of a source is never
// held (it is the source's start). A nil Pause never holds.
type Pause struct {
	mu     sync.Mutex
	held   bool
	lifted chan struct{}
	// waiting counts the queries held now.
	waiting int
	// lifts counts the times the pause was lifted; waited, the queries it held.
	lifts, waited uint64
}

// NewPause returns a pause, held or not.
func NewPause(held bool) *Pause {
	p := &Pause{lifted: make(chan struct{})}
	p.Set(held)
	return p
}

// Set holds the queries, or lets them go on.
func (p *Pause) Set(held bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case held && !p.held:
		p.lifted = make(chan struct{})
	case !held && p.held:
		close(p.lifted)
		p.lifts++
	}
	p.held = held
}

// Held says whether the queries are held now.
func (p *Pause) Held() bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Lifts is how many times the pause was lifted: a query held then went on, even if the pause
// holds again since (a simulator that stands in for the queries asks it after each step).
func (p *Pause) Lifts() uint64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lifts
}

// Waited is how many queries the pause held so far (each Wait that found it held).
func (p *Pause) Waited() uint64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waited
}

// Wait returns once the queries may go on (nil), or the context's cause when it ends first.
func (p *Pause) Wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	held, lifted := p.held, p.lifted
	if held {
		p.waiting++
		p.waited++
	}
	p.mu.Unlock()
	if !held {
		return nil
	}
	defer func() {
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}()
	select {
	case <-lifted:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// waitingNow is how many queries the pause holds now.
func (p *Pause) waitingNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting
}
