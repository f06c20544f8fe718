package watch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// Retry is how a source waits between failed queries.
type Retry func() backoff.BackOff

// DefaultRetry is jittered exponential backoff up to 30s that never gives up.
func DefaultRetry() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 30 * time.Second
	b.MaxElapsedTime = 0
	return b
}

// sink receives events.
type sink interface{ Send(Event) }

// follow calls next until ctx ends and sends what it returns, except the first result: ready
// is called after the first attempt, and the evaluation that follows readiness reads the state
// itself. A recovery after failures sends an event too, since anything may have changed while
// the source was blind. events hears whether the watch reads, from before its first read until
// it ends.
func follow(ctx context.Context, name string, events *Events, log *slog.Logger, retry Retry, ready func(), next func(context.Context) (Event, error)) error {
	first := true
	events.Reading(name, false)
	defer events.Gone(name)
	return Retrying(ctx, name, log, retry, func(ctx context.Context) (bool, error) {
		ev, err := next(ctx)
		if ctx.Err() != nil {
			return true, nil
		}
		events.Reading(name, err == nil)
		if first {
			first = false
			ready()
			if err == nil {
				log.Debug("watching", logkey.Watch, name)
				return false, nil
			}
		}
		if err == nil {
			events.Send(ev)
		}
		return false, err
	})
}

// Retrying calls try until it is done or ctx ends (nil). A failure is tried again with backoff
// (retry; DefaultRetry when nil) and logged once when it starts, and once when it ends; a
// backoff that gives up returns the last error.
func Retrying(ctx context.Context, name string, log *slog.Logger, retry Retry, try func(context.Context) (done bool, err error)) error {
	if retry == nil {
		retry = DefaultRetry
	}
	b := backoff.WithContext(retry(), ctx)
	failing := false
	for {
		done, err := try(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !failing {
				log.Warn("watch failing: retrying with backoff", logkey.Watch, name, logkey.Err, err)
				failing = true
			}
			d := b.NextBackOff()
			if d == backoff.Stop {
				return fmt.Errorf("watch %s: %w", name, err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
			continue
		}
		if failing {
			log.Info("watch recovered", logkey.Watch, name)
			failing = false
		}
		b.Reset()
		if done {
			return nil
		}
	}
}

// KeySource sends an event whenever a key appears, changes or goes away.
type KeySource struct {
	KV      *api.KV
	Key     string
	Source  Source
	Options api.QueryOptions
	Wait    time.Duration
	Logger  *slog.Logger
	Retry   Retry
	// Pause, when set, holds the watch between two changes while it is held.
	Pause *Pause
	// Classify, when set, names the source of an event by the key's value (nil when absent)
	// instead of Source.
	Classify func(*api.KVPair) Source
}

// Run watches until ctx ends.
func (s KeySource) Run(ctx context.Context, events *Events, ready func()) error {
	w := &Key{KV: s.KV, Key: s.Key, Options: s.Options, Wait: s.Wait, Pause: s.Pause}
	return follow(ctx, s.Key, events, s.Logger, s.Retry, ready, func(ctx context.Context) (Event, error) {
		pair, err := w.Next(ctx)
		src := s.Source
		if s.Classify != nil && err == nil {
			src = s.Classify(pair)
		}
		return Event{Source: src, Subject: s.Key, Exists: pair != nil}, err
	})
}

// HealthSource sends an event whenever the health of a service this node's reboot depends on
// changes (any check of any instance), or the set of those services changes.
type HealthSource struct {
	Client  *api.Client
	Node    string
	Tag     string
	Options api.QueryOptions
	Wait    time.Duration
	Logger  *slog.Logger
	Retry   Retry
	// Seen, when set, hears the nodes running each service every time its health is read, so
	// that they are remembered as its members; and no nodes when a read failed, or before a
	// read that follows a hold of the watch, since the nodes it heard last may have left and
	// come back meanwhile.
	Seen func(ctx context.Context, service string, nodes []string)
	// Runs, when set, hears the services this node runs (tagged Tag) every time their set is
	// read, so that the node remembers itself as their member: at once, and again should it have
	// been forgotten meanwhile.
	Runs func(ctx context.Context, services []string)
	// Hold, when set, holds the watches (of the set of services, and of each one's health)
	// between two changes as the daemon's state asks, and hears how many nodes run each service
	// at every read of its health.
	Hold *HealthHold
}

// Run watches until ctx ends. It is ready when it has read the set of services and the
// health of each once.
func (s HealthSource) Run(ctx context.Context, events *Events, ready func()) error {
	services := &Query{Wait: s.Wait, Options: s.Options, Pause: s.Hold.Services(), Fetch: func(ctx context.Context, q *api.QueryOptions) (string, uint64, error) {
		node, meta, err := s.Client.Catalog().Node(s.Node, q)
		if err != nil {
			return "", 0, fmt.Errorf("watch services of node %s: %w", s.Node, err)
		}
		names := Tagged(node, s.Tag)
		if s.Runs != nil {
			s.Runs(ctx, names)
		}
		return strings.Join(names, "\n"), meta.LastIndex, nil
	}}
	var (
		cancel   context.CancelFunc = func() {}
		watched  string
		watching bool
		done     = make(chan struct{})
		once     sync.Once
	)
	close(done)
	defer func() { cancel(); <-done }()
	allReady := func() { once.Do(ready) }
	return follow(ctx, "services of "+s.Node, events, s.Logger, s.Retry, func() {}, func(ctx context.Context) (Event, error) {
		fp, err := services.Next(ctx)
		if err != nil {
			allReady()
			return Event{}, err
		}
		if !watching || fp != watched {
			cancel()
			<-done
			watched, watching = fp, true
			var sctx context.Context
			sctx, cancel = context.WithCancel(ctx)
			done = make(chan struct{})
			go s.watchServices(sctx, strings.Fields(fp), events, done, allReady)
		}
		return Event{Source: SourceHealth, Subject: "services of " + s.Node, Exists: fp != ""}, nil
	})
}

// Tagged are the services of node (nil: not in the catalog) tagged tag, by name, sorted.
func Tagged(node *api.CatalogNode, tag string) []string {
	var names []string
	if node != nil {
		for _, svc := range node.Services {
			if slices.Contains(svc.Tags, tag) && !slices.Contains(names, svc.Service) {
				names = append(names, svc.Service)
			}
		}
	}
	sort.Strings(names)
	return names
}

// watchServices watches the health of each service until ctx ends; ready is called when each
// has been read once.
func (s HealthSource) watchServices(ctx context.Context, names []string, events *Events, done chan<- struct{}, ready func()) {
	defer close(done)
	var first sync.WaitGroup
	first.Add(len(names))
	go func() { first.Wait(); ready() }()
	var all sync.WaitGroup
	for _, name := range names {
		all.Add(1)
		go func() {
			defer all.Done()
			q := &Query{Wait: s.Wait, Options: s.Options, Pause: s.Hold.Service(name), Fetch: func(ctx context.Context, q *api.QueryOptions) (string, uint64, error) {
				fp, nodes, index, err := serviceHealth(ctx, s.Client, name, q)
				blind := err == nil && s.Hold.Saw(name, len(nodes))
				if s.Seen != nil {
					if blind {
						// Held since its last read, it saw nothing of what happened meanwhile (a
						// node that left, was forgotten and came back): Seen hears so first, as
						// after a failed read.
						s.Seen(ctx, name, nil)
					}
					if err != nil {
						nodes = nil
					}
					s.Seen(ctx, name, nodes)
				}
				return fp, index, err
			}}
			readyOnce := sync.OnceFunc(first.Done)
			defer readyOnce()
			_ = follow(ctx, "health of "+name, events, s.Logger, s.Retry, readyOnce, func(ctx context.Context) (Event, error) {
				_, err := q.Next(ctx)
				return Event{Source: SourceHealth, Subject: name, Exists: true}, err
			})
		}()
	}
	all.Wait()
}

// serviceHealth fingerprints every check of every instance of a service, and the instance's
// tags (they carry the rules: a tag fixed or changed is an event), and names the nodes running
// it.
func serviceHealth(_ context.Context, client *api.Client, service string, q *api.QueryOptions) (string, []string, uint64, error) {
	instances, meta, err := Instances(client, service, q)
	if err != nil {
		return "", nil, 0, fmt.Errorf("watch health of service %s: %w", service, err)
	}
	var lines, nodes []string
	seen := make(map[string]bool, len(instances))
	for _, inst := range instances {
		if !seen[inst.Node] {
			seen[inst.Node] = true
			nodes = append(nodes, inst.Node)
		}
		lines = append(lines, inst.Node+"/"+inst.ServiceID+" tags "+strconv.Quote(strings.Join(inst.Tags, "\n")))
		for _, c := range inst.Checks {
			lines = append(lines, inst.Node+"/"+inst.ServiceID+"/"+c.CheckID+"="+c.Status)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nodes, meta.LastIndex, nil
}

// Tick sends an event every Interval, in case an event was missed; for For only, when For is
// set.
type Tick struct {
	Interval time.Duration
	For      time.Duration
}

// Run ticks until ctx ends (or For has passed).
func (t Tick) Run(ctx context.Context, events *Events, ready func()) error {
	ready()
	if t.Interval <= 0 {
		<-ctx.Done()
		return nil
	}
	tk := time.NewTicker(t.Interval)
	defer tk.Stop()
	var end <-chan time.Time
	if t.For > 0 {
		end = time.After(t.For)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-end:
			<-ctx.Done()
			return nil
		case <-tk.C:
			events.Send(Event{Source: SourceTick})
		}
	}
}

// Delayed starts a source only after Delay. It is ready at once (the evaluation that follows
// readiness reads the state itself), and sends an event when the source has read its state
// for the first time, since anything may have changed meanwhile.
type Delayed struct {
	Source interface {
		Run(ctx context.Context, events *Events, ready func()) error
	}
	Delay time.Duration
}

// Run waits for Delay, then runs the source until ctx ends.
func (d Delayed) Run(ctx context.Context, events *Events, ready func()) error {
	// Until it has read its state, it watches nothing: a run that waits on what the watches
	// report cannot rely on them (see Events.Watching).
	name := fmt.Sprintf("delayed source %p", &d)
	events.Reading(name, false)
	defer events.Gone(name)
	ready()
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(d.Delay):
	}
	return d.Source.Run(ctx, events, func() {
		events.Gone(name)
		events.Send(Event{Source: SourceStart})
	})
}
