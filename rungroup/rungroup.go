// Package rungroup runs the long-lived parts of a process as one: the first part to end ends
// the others, and the group ends once all have, with the error of the first (as
// github.com/oklog/run does, with a context where oklog/run takes an interrupt function).
package rungroup

import "context"

// Group is a set of parts, each running until its context ends. The zero Group is empty.
type Group struct {
	parts []func(ctx context.Context) error
}

// Add adds a part: run runs until ctx ends (then it returns nil, or why it could not stop
// cleanly), or until it fails.
func (g *Group) Add(run func(ctx context.Context) error) {
	g.parts = append(g.parts, run)
}

// Run runs every part at once until one ends or ctx does, then ends the others and waits for
// them. It returns the error of the part that ended first (nil for a group without parts).
func (g *Group) Run(ctx context.Context) error {
	if len(g.parts) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan error, len(g.parts))
	for _, run := range g.parts {
		go func() { ended <- run(ctx) }()
	}
	first := <-ended
	cancel()
	for range len(g.parts) - 1 {
		<-ended
	}
	return first
}
