package fleetlock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/watch"
)

// HostTurn is how long the server keeps the turn of a host told of a place, answering in the
// queue in its stead: a FleetLock client asks once per tick of its own (Zincati every 5 minutes,
// and up to 10% more), so the turn of a host that waits in the queue must outlast one tick, or
// it would wait forever behind nodes and hosts that ask more often.
const HostTurn = 6 * time.Minute

// turns is what the server does for the hosts it queued, between their requests: it hears when
// a place opens for one (its turn key: see place.Woken), answers for it at once and keeps its
// turn (lock.Queue.Keep) until it asks again, for HostTurn at most; and it follows the nodes its
// own releases told of a place, passing over those that do not answer (see place.PassTurns),
// as a daemon does.
type turns struct {
	mu sync.Mutex
	// hosts are the hosts this server queued, by group: when each was told of a place (zero:
	// not told since it last asked), and the turn key's index then.
	hosts map[string]map[string]*hostTurn
	// watched are the groups whose turn keys are watched.
	watched map[string]bool
	// start hands Run a group to watch, or nodes to follow.
	start chan func(ctx context.Context)
}

type hostTurn struct {
	told  time.Time
	index uint64
}

func (l *Locks) turnsOf() *turns {
	l.turnsOnce.Do(func() {
		l.turns = &turns{hosts: map[string]map[string]*hostTurn{}, watched: map[string]bool{}, start: make(chan func(context.Context), 64)}
	})
	return l.turns
}

// Run answers in the queue for the hosts this server queued, and follows the nodes its releases
// told of a place, until ctx ends.
func (l *Locks) Run(ctx context.Context) error {
	t := l.turnsOf()
	tick := time.NewTicker(lock.KeepEvery)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-t.start:
			wg.Go(func() { f(ctx) })
		case <-tick.C:
			l.keepTurns(ctx)
		}
	}
}

// queued notes that host waits in group's queue, and watches the group's turn keys.
func (l *Locks) queued(group, host string) {
	t := l.turnsOf()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hosts[group] == nil {
		t.hosts[group] = map[string]*hostTurn{}
	}
	if _, ok := t.hosts[group][host]; !ok {
		t.hosts[group][host] = &hostTurn{}
	}
	if !t.watched[group] {
		t.watched[group] = true
		select {
		case t.start <- func(ctx context.Context) { l.watchTurns(ctx, group) }:
		default:
			t.watched[group] = false
		}
	}
}

// asked notes that host asked itself: it answers for itself, and waits for no turn of its own
// when it took a place (granted).
func (l *Locks) asked(group, host string, granted bool) {
	t := l.turnsOf()
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.hosts[group][host]; ok {
		h.told = time.Time{}
		if granted {
			delete(t.hosts[group], host)
		}
	}
}

// watchTurns watches group's turn keys while this server has hosts queued there: a host told of
// a place is answered for at once (see keepTurns).
func (l *Locks) watchTurns(ctx context.Context, group string) {
	t := l.turnsOf()
	defer func() {
		t.mu.Lock()
		t.watched[group] = false
		t.mu.Unlock()
	}()
	st := l.store(group)
	retry := watch.DefaultRetry()
	var turns map[string]store.Turn
	q := watch.Query{Wait: HostTurn, Fetch: func(ctx context.Context, q *api.QueryOptions) (string, uint64, error) {
		var index uint64
		var err error
		turns, index, err = st.Turns(ctx, q.WaitIndex, q.WaitTime)
		return fmt.Sprint(turns), index, err
	}}
	for ctx.Err() == nil {
		t.mu.Lock()
		none := len(t.hosts[group]) == 0
		t.mu.Unlock()
		if none {
			return
		}
		if _, err := q.Next(ctx); err != nil {
			if ctx.Err() == nil {
				l.Logger.Warn("could not watch the turn keys of the hosts queued", logkey.Group, group, logkey.Err, err)
				select {
				case <-ctx.Done():
				case <-time.After(retry.NextBackOff()):
				}
			}
			continue
		}
		retry.Reset()
		if l.told(group, turns) {
			l.keepTurns(ctx)
		}
	}
}

// told notes the hosts of group whose turn keys say a place opened for them since last seen.
func (l *Locks) told(group string, turns map[string]store.Turn) bool {
	t := l.turnsOf()
	t.mu.Lock()
	defer t.mu.Unlock()
	any := false
	for host, turn := range turns {
		h, ok := t.hosts[group][host]
		if ok && turn.Place && turn.Index > h.index {
			h.told, h.index, any = l.now(), turn.Index, true
		}
	}
	return any
}

// keepTurns answers for every host told of a place within HostTurn that has not asked since:
// its entry in the queue says it is there (lock.Queue.Keep), so that nobody passes over it and
// its turn lasts until it asks.
func (l *Locks) keepTurns(ctx context.Context) {
	t := l.turnsOf()
	keep := map[string][]string{}
	t.mu.Lock()
	for group, hosts := range t.hosts {
		for host, h := range hosts {
			if !h.told.IsZero() && time.Since(h.told) < HostTurn {
				keep[group] = append(keep[group], host)
			}
		}
	}
	t.mu.Unlock()
	for group, hosts := range keep {
		st := l.store(group)
		now := l.now()
		err := place.ChangeQueue(ctx, l.locks(st), l.Logger, func(q lock.Queue) lock.Queue {
			for _, host := range hosts {
				if q.Ready(host) {
					q = q.Keep(host, now)
				}
			}
			return q
		})
		if err != nil && ctx.Err() == nil {
			l.Logger.Warn("could not keep the turn of the hosts told of a place", logkey.Group, group, logkey.Nodes, hosts, logkey.Err, err)
		}
	}
}

// follow passes over, once they had their time to answer, the nodes of group that a release of
// this server told of a place and that did not answer, and follows whom that told in turn (see
// place.PassTurns).
func (l *Locks) follow(group string, woke []lock.QueueEntry) {
	if len(woke) == 0 {
		return
	}
	t := l.turnsOf()
	f := func(ctx context.Context) {
		st := l.store(group)
		for round := 0; len(woke) > 0; round++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(lock.AnswerWithin):
			}
			next, err := place.PassTurns(ctx, l.locks(st), l.Logger, woke, place.PassReach(round), l.now())
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					l.Logger.Warn("could not pass over the nodes told of a place that did not answer", logkey.Group, group, logkey.Err, err)
				}
				return
			}
			woke = next
		}
	}
	select {
	case t.start <- f:
	default:
		l.Logger.Warn("too many passes under way: the nodes told of a place are not followed", logkey.Group, group)
	}
}
