package sim

import "time"

// maxRequestsPerMinute bounds the requests one node's daemon (or the FleetLock server on a
// host's behalf) makes of Consul within a simulated minute: a daemon looks when something it
// watches changes, and a node staying green, the busiest, reads its health every second. One that
// runs as fast as Consul answers (its own write waking it for its next run) makes thousands.
const maxRequestsPerMinute = 1200

// countRequest counts a request of n's, and fails the run when n made more than
// maxRequestsPerMinute within the current simulated minute.
func (w *World) countRequest(n *node) {
	minute := int64(w.sched.now.Sub(epoch) / time.Minute)
	if minute != w.chk.minute {
		w.chk.minute = minute
		clear(w.chk.requests)
	}
	w.chk.requests[n.name]++
	if w.chk.requests[n.name] == maxRequestsPerMinute+1 {
		w.violate("%s made more than %d requests of Consul within a minute: its daemon runs as fast as Consul answers", n.name, maxRequestsPerMinute)
	}
}
