package watch

import (
	"sync"
	"time"
)

// Period is how many ticks apart an idle daemon reads a service of n nodes: ceil(n/2), at least
// one. Each of the n nodes reads once a period, so that about two of them read at each tick,
// whatever n.
func Period(n int) int64 {
	return max(1, (int64(n)+1)/2)
}

// Reads says whether node reads service at tick, as an idle daemon of a service of n nodes takes
// its turn: once a Period, in the slot a hash of the node's and the service's names chooses. It
// is a function of its arguments alone: every daemon judges its own turn, asking no one.
func Reads(node, service string, n int, tick int64) bool {
	p := Period(n)
	if p == 1 {
		return true
	}
	return mod(tick, p) == int64(slot(node, service)%uint64(p))
}

// readsWithin says whether node reads service at a tick after after, up to upto (see Reads): a
// tick the daemon did not evaluate in (its tick came late, or not at all) does not lose its turn.
func readsWithin(node, service string, n int, after, upto int64) bool {
	if upto-after >= Period(n) {
		return true
	}
	for t := after + 1; t <= upto; t++ {
		if Reads(node, service, n, t) {
			return true
		}
	}
	return false
}

// slot is the 64-bit FNV-1a hash of the node's name, a zero byte and the service's name.
func slot(node, service string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	add := func(s string) {
		for i := range len(s) {
			h ^= uint64(s[i])
			h *= prime
		}
	}
	add(node)
	h *= prime // the zero byte between the two names
	add(service)
	return h
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// HealthMode is what a node's health watches (see HealthSource) do.
type HealthMode int

const (
	// HealthAsks: every watch asks, and hears every change.
	HealthAsks HealthMode = iota
	// HealthHeld: every watch is held between two changes.
	HealthHeld
	// HealthShares: the node has nothing to do, and evaluates. The watch of its set of services
	// asks once more, so that it knows what it runs; each service's watch asks only at the
	// ticks this node reads the service (see Reads), so that its daemons take turns reading it.
	HealthShares
)

// HealthHold holds a node's health watches (see HealthSource) as its daemon's state asks: one
// pause for the watch of the set of its services, and one for each service's. A nil HealthHold
// never holds.
type HealthHold struct {
	node string
	// interval is a tick's length: the tick of a moment is the number of intervals since the Unix
	// epoch, on the daemon's clock. None (zero): every evaluation is a turn of every service.
	interval time.Duration

	mu       sync.Mutex
	mode     HealthMode
	set      *Pause
	services map[string]*share
	// last is the tick of the last Set that let the services' watches ask, when there was one.
	last  int64
	asked bool
}

// share is one service's watch: its pause, how many nodes ran the service at its last read, and
// how many times the pause had held its query then.
type share struct {
	pause  *Pause
	n      int
	waited uint64
}

// NewHealthHold returns the hold of node's health watches, in mode; interval is its daemon's tick.
func NewHealthHold(node string, interval time.Duration, mode HealthMode) *HealthHold {
	h := &HealthHold{node: node, interval: interval, mode: mode, set: NewPause(mode == HealthHeld), services: map[string]*share{}}
	return h
}

// Set puts the watches in mode at now, on the daemon's clock.
func (h *HealthHold) Set(mode HealthMode, now time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	tick := h.tick(now)
	h.mode = mode
	h.set.Set(mode == HealthHeld)
	for name, s := range h.services {
		s.pause.Set(h.holds(name, s.n, tick))
	}
	if mode != HealthHeld {
		h.last, h.asked = tick, true
	}
}

// holds says whether service's watch, read by n nodes at its last read, is held in h's mode at
// tick (h.mu held).
func (h *HealthHold) holds(service string, n int, tick int64) bool {
	switch h.mode {
	case HealthHeld:
		return true
	case HealthShares:
		if h.interval <= 0 {
			return false
		}
		after := tick - 1
		if h.asked {
			after = h.last
		}
		return !readsWithin(h.node, service, n, after, tick)
	}
	return false
}

func (h *HealthHold) tick(now time.Time) int64 {
	if h.interval <= 0 {
		return 0
	}
	return now.UnixNano() / int64(h.interval)
}

// Services is the pause of the watch of the set of the node's services.
func (h *HealthHold) Services() *Pause {
	if h == nil {
		return nil
	}
	return h.set
}

// Service is the pause of service's watch. A service new to the hold asks, unless every watch
// is held: its daemon knows nothing of it yet.
func (h *HealthHold) Service(service string) *Pause {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.services[service]
	if s == nil {
		s = &share{pause: NewPause(h.mode == HealthHeld)}
		h.services[service] = s
	}
	return s.pause
}

// Saw notes that n nodes ran service at a read of its watch: its next turns are of a service of
// n nodes. It says whether the pause held the watch's query since its last read: the watch did
// not see what happened meanwhile (a node that left the catalog and came back), and what it
// read now is all it knows. (A query that waited in Consul saw every change.)
func (h *HealthHold) Saw(service string, n int) (blind bool) {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.services[service]
	if s == nil {
		return false
	}
	waited := s.pause.Waited()
	s.n, blind, s.waited = n, waited != s.waited, waited
	return blind
}

// Held says whether every watch is held.
func (h *HealthHold) Held() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mode == HealthHeld
}
