package sim

import (
	"slices"
	"time"

	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/watch"
)

// The daemon's watches, as cmd/rebootmgr wires them: which key wakes a node with which source,
// and which of the daemon's pauses holds that watch.

// written is a key written, read once for every daemon that may watch it.
type written struct {
	key  string
	k    store.Key
	turn bool // a turn key that now tells of a place (see store.TurnIsPlace)
}

// source is what a change of key tells n's daemon, and whether its watch is held now (see
// heldNow); ok false when n does not watch key.
func (p *proc) source(wk written) (src watch.Source, held, ok bool) {
	src, ok = p.watched(wk)
	return src, ok && p.heldNow(src), ok
}

// watched is the source of the daemon's watch of a key written (see cmd/rebootmgr's daemon
// sources); false when n does not watch it.
func (p *proc) watched(wk written) (watch.Source, bool) {
	n, k := p.node, wk.k
	if wk.key == "" {
		return watch.SourceHealth, len(n.services) > 0
	}
	switch k.Kind {
	case store.KindStop:
		return watch.SourceStop, true
	case store.KindGroupStop:
		return watch.SourceStop, k.Group == n.group
	case store.KindRebootRequired:
		return watch.SourceTrigger, k.Node == n.name
	case store.KindDisabled:
		return watch.SourceDisabled, k.Node == n.name
	case store.KindLimit:
		return watch.SourceLimit, k.Group == n.group
	case store.KindTurn:
		if k.Group != n.group || k.Node != n.name {
			return "", false
		}
		if wk.turn {
			return watch.SourceTurn, true
		}
		return watch.SourceLook, true
	case store.KindLock, store.KindQueue:
		return watch.SourceLock, k.Group == n.group
	case store.KindHolders:
		return watch.SourceHolders, true
	case store.KindClaims:
		return watch.SourceClaims, true
	case store.KindPythonSession, store.KindPythonMarker:
		// As --python-markers watches them (LegacyKeys): the fleet's and the group's.
		return watch.SourcePython, p.w.cfg.PythonEvery > 0 && (k.Group == "" || k.Group == n.group)
	case store.KindPythonStop:
		return watch.SourceStop, p.w.cfg.PythonEvery > 0 && k.Group == n.group
	case store.KindPythonConfig:
		return watch.SourceDisabled, p.w.cfg.PythonEvery > 0 && k.Node == n.name
	}
	return "", false
}

// watchable are the keys written that some daemon may watch, each read once.
func (w *World) watchable(keys []string) []written {
	var out []written
	for _, key := range keys {
		if key == "" {
			out = append(out, written{})
			continue
		}
		k, ok := w.keys.Parse(key)
		if !ok {
			continue
		}
		wk := written{key: key, k: k}
		switch k.Kind {
		case store.KindStop, store.KindGroupStop, store.KindRebootRequired, store.KindDisabled, store.KindLimit,
			store.KindLock, store.KindQueue, store.KindHolders, store.KindClaims:
		case store.KindTurn:
			v, _, ok := w.model.Get(key)
			wk.turn = ok && store.TurnIsPlace([]byte(v))
		default:
			continue
		}
		out = append(out, wk)
	}
	return out
}

// audience are the nodes that may watch one of the keys written, in the fleet's order: a
// node's own key tells that node alone, a group's key its group's nodes.
func (w *World) audience(ws []written) []*node {
	var idx []int
	for _, wk := range ws {
		switch wk.k.Kind {
		case store.KindRebootRequired, store.KindDisabled, store.KindTurn:
			if n, ok := w.byName[wk.k.Node]; ok && !n.host {
				idx = append(idx, n.index)
			}
		case store.KindGroupStop, store.KindLimit, store.KindLock, store.KindQueue:
			idx = append(idx, w.byGroup[wk.k.Group]...)
		default:
			// The catalog, and the fleet's keys: every node.
			return w.nodes
		}
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out := make([]*node, len(idx))
	for i, j := range idx {
		out[i] = w.nodes[j]
	}
	return out
}

// onWrite is the model's news of a write: every daemon watching a key written hears of it after
// a watch's latency, or once its watch is no longer held.
func (w *World) onWrite(keys []string) {
	w.afterWrite(keys)
	if w.cfg.HealthReads && slices.Contains(keys, "") {
		w.healthChanged()
	}
	ws := w.watchable(keys)
	if len(ws) == 0 {
		return
	}
	for _, n := range w.audience(ws) {
		p := n.proc
		if p == nil || p.dead || p.host {
			continue
		}
		for _, wk := range ws {
			src, held, ok := p.source(wk)
			switch {
			case !ok:
			case held:
				p.dirty[src] = true
			default:
				w.deliver(p, src)
			}
		}
	}
}

// deliver tells p of src after a watch's latency: a blocking query's answer, then the event.
func (w *World) deliver(p *proc, src watch.Source) {
	// The blocking query that returns with the change is a request of the node's, and its next
	// one, made at once, is another (the health watches' are counted as they read, when they do).
	if src != watch.SourceHealth || !w.cfg.HealthReads {
		w.watchRequests += 2
	}
	lat := time.Duration(w.sched.rng.Int64N(int64(20 * time.Millisecond)))
	w.sched.add(w.sched.now.Add(lat), p.node.name, "event "+string(src), func() {
		if p.dead {
			return
		}
		w.hear(p, watch.Event{Source: src, At: p.clock().Now()})
	})
}

// hear sends ev to p's daemon and wakes it: idle, it looks at what is due (see poke); parked
// on a wait of a run that hears its watches (a node staying green: see pipeline.Listening), the
// wait is over, and the run goes on until it parks again. Elsewhere (on a request), the run
// finds the event when it is answered.
func (w *World) hear(p *proc, ev watch.Event) {
	// The wait is called off before the event is sent: the run's goroutine wakes at the send.
	waiting := p.wait != nil && p.d.Events.Tapped()
	if waiting {
		p.wait.gone = true
		p.wait = nil
	}
	p.d.Events.Send(ev)
	if waiting {
		w.awaitPark()
		return
	}
	w.poke(p)
}

// release delivers what p's held watches saw, for each watch no longer held.
func (w *World) release(p *proc) {
	for _, src := range heldSources {
		if p.dirty[src] && !p.heldNow(src) {
			delete(p.dirty, src)
			w.deliver(p, src)
		}
	}
}

// heldSources are the sources a pause may hold, in the order they are released.
var heldSources = []watch.Source{watch.SourceTurn, watch.SourceLook, watch.SourceLock, watch.SourceHolders, watch.SourcePython, watch.SourceClaims, watch.SourceHealth}

func (p *proc) heldNow(src watch.Source) bool {
	d := p.d
	switch src {
	case watch.SourceHealth:
		return d.Health.Held()
	case watch.SourceTurn, watch.SourceLook:
		return d.Turn.Held()
	case watch.SourceLock, watch.SourceHolders, watch.SourcePython:
		return d.Quiet.Held()
	case watch.SourceClaims:
		return d.Claims.Held()
	}
	return false
}
