package store

import (
	"context"
	"sync"
	"time"

	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/watch"
)

// stopWait is how long one blocking query on a stop flag waits. It bounds how long a query
// left behind by a process that ended holds one of the agent's connections (Consul keeps a
// blocking query, and its connection, until its wait ends, even when the client has gone).
const stopWait = time.Minute

// flagWatch is one blocking query on a key, shared by every wait on it. A wait that ends never
// cancels the query: the query runs to its end, and only then does the watch stop when nobody
// waits any more, or carry on for those who came meanwhile. So however many runs wait and
// give up, the agent holds at most one query per key for them.
type flagWatch struct {
	c   *Consul
	key string

	mu      sync.Mutex
	running bool
	waiters int
	known   bool
	flag    place.Flag
	changed chan struct{}
}

// wait returns when the key exists (or ctx ends, with its cause).
func (w *flagWatch) wait(ctx context.Context) (place.Flag, error) {
	w.mu.Lock()
	w.waiters++
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	if !w.running {
		w.running = true
		go w.loop()
	}
	defer func() { w.waiters--; w.mu.Unlock() }()
	for {
		if w.known && w.flag.Set {
			return w.flag, nil
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			w.mu.Lock()
			return place.Flag{}, context.Cause(ctx)
		case <-changed:
		}
		w.mu.Lock()
	}
}

// loop runs the query until, after a result, nobody waits.
func (w *flagWatch) loop() {
	k := watch.Key{KV: w.c.Client.KV(), Key: w.key, Options: w.c.Options, Wait: stopWait}
	b := w.c.backOff()
	failing := false
	for {
		// Never cancelled: see flagWatch.
		pair, err := k.Next(context.Background())
		w.mu.Lock()
		if w.waiters == 0 {
			w.running, w.known = false, false
			w.mu.Unlock()
			return
		}
		if err != nil {
			if !failing {
				w.c.Logger.Warn("watch failing: retrying with backoff", logkey.Watch, w.key, logkey.Err, err)
				failing = true
			}
			w.mu.Unlock()
			time.Sleep(b.NextBackOff())
			continue
		}
		if failing {
			w.c.Logger.Info("watch recovered", logkey.Watch, w.key)
			failing = false
		}
		b.Reset()
		w.flag, w.known = flagOf(pair), true
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}
