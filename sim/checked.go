package sim

import (
	"time"
)

// checked is what the checks of this file's kin keep between steps: the queue's order and its
// hand-offs (order.go), the deadlines a group is stopped on (deadline.go), the zones (zones.go)
// and the daemons' rate of requests (rate.go).
type checked struct {
	// holders are each group's lock's holders at its last write (its queue: World.queues).
	holders map[string][]string
	// stalls are the groups whose free place waits for dead nodes at the front of the queue
	// while a live node waits behind them (see checkHandOffs).
	stalls map[string]stall
	// released are the nodes the write being checked released, by group; operator says that an
	// operator's command writes (it passes over nobody).
	released map[string][]string
	operator bool
	// rebootAt is when each machine's last reboot started, in true time.
	rebootAt map[string]time.Time
	// limitAt is when each group's limit was last written, in true time.
	limitAt map[string]time.Time
	// minute is the simulated minute the counts of requests are of; requests, each node's.
	minute   int64
	requests map[string]int
	// limits counts the operator's limit faults (every other one writes the key by hand).
	limits int
	// flood are the FleetLock ids of a flood (see flood.go).
	flood map[string]bool
}

func newChecked() checked {
	return checked{
		holders: map[string][]string{}, stalls: map[string]stall{},
		rebootAt: map[string]time.Time{}, limitAt: map[string]time.Time{}, requests: map[string]int{},
		flood: map[string]bool{}, released: map[string][]string{},
	}
}
