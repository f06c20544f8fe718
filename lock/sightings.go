package lock

import (
	"sync"
	"time"
)

// Skew is how far the clock of the node that wrote a time may be from the clock of the node that
// reads it before the reader stops believing it: a time is judged by when the reader first saw
// it, within Skew before that moment (see Sightings).
const Skew = time.Minute

// maxSightings bounds what Sightings remembers: past it, times not seen again for a day are
// forgotten.
const maxSightings = 4096

// Sightings remembers when this process first saw each time that another node wrote with its own
// clock (the moment a place opened, a node's turn, a reboot's start), so that the time is judged
// by this process's clock alone. A time can be no later than the moment it was first seen: one
// written by a clock ahead is taken as that moment. And a time written long before the moment it
// was first seen, by a process that watches the records, was written by a clock behind: it is
// taken as Skew before that moment at the earliest. So a turn lasts as long, and a deadline
// passes as late, as this process saw them begin, whatever the writer's clock said; a process
// that first sees a time late (just started, or not watching) judges it later, never earlier.
//
// The moment of a sighting is this process's clock as it judges the time, never earlier: a run
// judges at the moment it began, and one held up before it read the records (its process
// paused, Consul slow) reads times written after that moment (see firstSeen).
//
// Each time is judged as an offset from its sighting: for a process on the machine's clock, a
// jump of that clock after the sighting changes nothing judged by it.
//
// A nil *Sightings is a one-off command's, which has seen nothing before now: a time in its
// future is taken as now, one in its past as written.
type Sightings struct {
	// clock is this process's clock, with its monotonic reading (nil: see NewSightings).
	clock func() time.Time
	mu    sync.Mutex
	seen  map[string]sighting
	// halted: the last stop flags this process read halted its group; resumed is when it first
	// read them lifted after that (see Stopped).
	halted  bool
	resumed time.Time
	// limit: the group's limit this process last read (see Limited); relimited is when it
	// first read it changed.
	limit     string
	relimited time.Time
}

type sighting struct {
	written time.Time
	at      time.Time
}

// NewSightings is a memory of sightings for a process that lives on (a daemon, a server),
// whose clock reads clock (nil: a time is first seen at the moment its caller judges it at).
func NewSightings(clock func() time.Time) *Sightings {
	return &Sightings{clock: clock, seen: map[string]sighting{}}
}

// At is when the event what (a name for what the time is of, such as "turn/n3") happened, as
// this process judges it at now, given the time written for it (see Sightings). The zero time
// stays zero.
func (s *Sightings) At(what string, written, now time.Time) time.Time {
	if written.IsZero() {
		return written
	}
	if s == nil {
		if written.After(now) {
			return now
		}
		return written
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sg, ok := s.seen[what]
	if !ok || !sg.written.Equal(written) {
		if len(s.seen) >= maxSightings {
			s.forget(now.Add(-24 * time.Hour))
		}
		sg = sighting{written: written, at: s.firstSeen(now)}
		s.seen[what] = sg
	}
	// The time is given as an offset from the sighting, which carries the process's monotonic
	// clock when now did: a jump of this machine's own clock then moves nothing judged by it.
	return sg.at.Add(min(max(written.Sub(sg.at), -Skew), 0))
}

// firstSeen is the moment a time judged at now is first seen: now, or this process's clock
// when that is later. A run judges at the moment it began (its now), and reads the records
// after: a run held up between the two (its process paused, Consul slow) reads times written
// after its now. Taken as seen at its now, such a time would be judged as old as the hold-up
// is long, and a run after it would find a turn over, or a cooldown ended, that began moments
// before it looked (a node passed over while it kept its turn).
func (s *Sightings) firstSeen(now time.Time) time.Time {
	if s.clock == nil {
		return now
	}
	if c := s.clock(); c.After(now) {
		return c
	}
	return now
}

// forget drops the sightings made before then.
func (s *Sightings) forget(then time.Time) {
	for what, sg := range s.seen {
		if sg.at.Before(then) {
			delete(s.seen, what)
		}
	}
}

// Stopped notes what the stop flags of this process's group were when it read them at now:
// set (halted) or not. A process that serves one group (a daemon) tells it every read.
//
// No node can take its place while its group is stopped, and none answers a wake (see
// place.PassTurns), so a stop longer than a turn would otherwise end every turn at once: the
// first node to run after the resume, perhaps one far back, would take the place and pass over
// every node before it. So, as this process judges them, turns begin no earlier than the moment
// it first saw the stop lifted (and, while it sees its group halted, no turn passes): each node
// halted gets a whole turn from the resume on. A process that never saw the stop judges turns
// as written.
func (s *Sightings) Stopped(set bool, now time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case set:
		s.halted = true
	case s.halted:
		s.halted, s.resumed = false, now
	}
}

// Limited notes the limit of this process's group (its text: see Limit.String) as it read it at
// now. A process that serves one group (a daemon) tells it every read.
//
// A limit key written by hand may open places that no release noted in the queue (see
// Queue.Freed; rebootmgr limit notes them: see store.Consul.SetLimit), raising the count or
// lifting a bound per zone. The nodes a full lock or a zone rebooting kept out had no turn
// running while they could not go; judged from the last release, their turns would be over the
// moment the places open, and the first node to look, perhaps one far back, would take one and
// pass over every node before it. So, as this process judges them, turns begin no earlier than
// the moment it first saw the limit changed. The first limit it reads is no change.
func (s *Sightings) Limited(limit string, now time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit != "" && s.limit != limit {
		s.relimited = now
	}
	s.limit = limit
}

// TurnsFrom is the earliest a turn begins as this process judges at now (see Stopped and
// Limited): now while its group is halted, else the later of the moment it saw the last stop
// lifted and the moment it saw the limit last changed; zero when it saw neither (or for a nil
// Sightings).
func (s *Sightings) TurnsFrom(now time.Time) time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return now
	}
	if s.relimited.After(s.resumed) {
		return s.relimited
	}
	return s.resumed
}
