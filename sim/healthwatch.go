package sim

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/watch"
)

// The daemons' health watches, read as watch.HealthSource reads them (see Config.HealthReads):
// the set of the node's services (its catalog entry), and each service's health. Each is a
// blocking query that the daemon's pause holds between two answers. An answer is a read the
// model answers and counts, with its bytes; what a blocking query would wait for is asked of
// the model's indexes, which cost nothing.

// hwatch is one of a daemon's health watches: service "" is the set of its node's services.
type hwatch struct {
	service string
	// index is the index its last answer carried.
	index uint64
	// inFlight: a query waits in Consul for the index to move, since since; else the watch is
	// held at its pause.
	inFlight bool
	since    time.Time
	// lifts are the lifts of its pause seen so far; held, its pause as last seen.
	lifts uint64
	held  bool
	// parked: its pause held its query since its last answer.
	parked bool
}

// healthCost is what the health watches' answers cost.
type healthCost struct{ requests, bytes uint64 }

// startHealth makes p's health watches read once, as the source does at its start (its first
// reads are never held), and leaves each asking.
func (w *World) startHealth(p *proc) {
	n := p.node
	p.hclient = w.model.Client(n.name, nil)
	p.hstore = &store.Consul{Client: p.hclient, Keys: w.keys, Group: n.group, Logger: slog.New(slog.DiscardHandler), Now: p.clock().Now}
	p.health = []*hwatch{{service: ""}}
	for _, svc := range n.services {
		p.health = append(p.health, &hwatch{service: svc})
	}
	for _, hw := range p.health {
		hw.lifts = p.healthPause(hw.service).Lifts()
		w.answer(p, hw)
		w.query(p, hw, false)
	}
}

// rememberSelf writes p's node down as a member of its services, as the first read of the
// health source does before the daemon's first evaluation (see store.RememberSelf), when the
// health watches are stood in for.
func (w *World) rememberSelf(p *proc) {
	n := p.node
	st := &store.Consul{Client: w.model.Client(n.name, nil), Keys: w.keys, Group: n.group, Logger: slog.New(slog.DiscardHandler), Now: p.clock().Now}
	_ = st.RememberSelf(context.Background(), n.name, n.services)
}

// healthPause is the pause that holds p's watch of service ("" for the set of its services).
func (p *proc) healthPause(service string) *watch.Pause {
	if service == "" {
		return p.d.Health.Services()
	}
	return p.d.Health.Service(service)
}

// index is the index a read of what hw watches would carry now.
func (w *World) index(hw *hwatch) uint64 {
	if hw.service == "" {
		return w.model.NodeIndex()
	}
	return w.model.HealthIndex(hw.service)
}

// answer is the read that answers hw's query: counted, with what the source does with it.
func (w *World) answer(p *proc, hw *hwatch) {
	before := w.nodeStats(p.node.name)
	ctx := context.Background()
	if hw.service == "" {
		entry, meta, err := p.hclient.Catalog().Node(p.node.name, nil)
		if err == nil {
			hw.index = meta.LastIndex
			_ = p.hstore.RememberSelf(ctx, p.node.name, watch.Tagged(entry, health.Tag))
		}
	} else {
		instances, meta, err := watch.Instances(p.hclient, hw.service, &api.QueryOptions{})
		if err == nil {
			hw.index = meta.LastIndex
			nodes := nodesOf(instances)
			// The source asks the hold whether its query waited at the pause; here no query
			// waits, and the watch knows it was parked.
			p.d.Health.Saw(hw.service, len(nodes))
			if hw.parked {
				_ = p.hstore.Remember(ctx, hw.service, nil)
			}
			_ = p.hstore.Remember(ctx, hw.service, nodes)
		}
	}
	hw.parked = false
	after := w.nodeStats(p.node.name)
	w.hcost.requests += after.requests - before.requests
	w.hcost.bytes += after.bytes - before.bytes
}

// query is hw's next query, once its answer is taken in: held when its pause holds, else it
// waits in Consul, or returns at once when what it watches moved meanwhile. lifted says that the
// pause let it go during a step: it asked then, and once more while the step ran, which waits.
func (w *World) query(p *proc, hw *hwatch, lifted bool) {
	if lifted {
		if w.index(hw) != hw.index {
			w.answer(p, hw)
		}
		hw.inFlight, hw.since = true, w.sched.now
		return
	}
	for !p.healthPause(hw.service).Held() {
		if w.index(hw) == hw.index {
			hw.inFlight, hw.since = true, w.sched.now
			return
		}
		w.answer(p, hw)
	}
	hw.inFlight, hw.parked = false, true
}

// settle answers hw's query in flight at each end of Consul's wait until now, at which the
// source asks again unless its pause holds.
func (w *World) settle(p *proc, hw *hwatch, now time.Time) {
	for hw.inFlight && !hw.since.Add(watch.DefaultWait).After(now) {
		hw.since = hw.since.Add(watch.DefaultWait)
		w.answer(p, hw)
		hw.inFlight, hw.parked = !hw.held, hw.held
	}
}

// healthChanged answers the health watches in flight whose service (or node's entry) moved.
func (w *World) healthChanged() {
	for _, n := range w.nodes {
		p := n.proc
		if p == nil || p.dead || p.health == nil {
			continue
		}
		for _, hw := range p.health {
			w.settle(p, hw, w.sched.now)
			if hw.inFlight && w.index(hw) != hw.index {
				w.answer(p, hw)
				w.query(p, hw, false)
			}
		}
	}
}

// healthStepped takes in what p's step did to its pauses: a query held goes once its pause was
// lifted, even if it holds again since.
func (w *World) healthStepped(p *proc) {
	for _, hw := range p.health {
		w.settle(p, hw, w.sched.now)
		pause := p.healthPause(hw.service)
		lifts := pause.Lifts()
		lifted := lifts != hw.lifts
		hw.lifts, hw.held = lifts, pause.Held()
		if !hw.inFlight && (lifted || !hw.held) {
			w.query(p, hw, lifted)
		}
	}
}

// settleHealth answers every query in flight whose wait ended by now.
func (w *World) settleHealth(now time.Time) {
	for _, n := range w.nodes {
		if p := n.proc; p != nil && !p.dead {
			for _, hw := range p.health {
				w.settle(p, hw, now)
			}
		}
	}
}

func nodesOf(instances []health.Instance) []string {
	var nodes []string
	for _, inst := range instances {
		if !slices.Contains(nodes, inst.Node) {
			nodes = append(nodes, inst.Node)
		}
	}
	return nodes
}

// nodeStats is what node's requests cost so far.
func (w *World) nodeStats(node string) healthCost {
	for _, s := range w.model.Stats().Nodes {
		if s.Node == node {
			return healthCost{s.Requests, s.BytesIn + s.BytesOut}
		}
	}
	return healthCost{}
}
