package daemon

import (
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/watch"
)

// listener is what a run hears of the daemon's watches (see pipeline.Listening): a tap on its
// events, which leaves every one to the loop after the run.
type listener struct {
	tap *watch.Tap
	// back gives the watches back to what the loop holds for the run.
	back func()
}

// listen opens a listener for the run the loop evaluates: the watches that a run staying green
// depends on ask while it is open, whatever the loop's state would hold (the health of the
// node's services, the lock and the fleet's holders with the Python rebootmgr's keys, its turn
// key; the stop flags are never held), and go back to that state's holds when it closes.
func (l *loop) listen() pipeline.Listener {
	d := l.d
	// The tap first: what a watch let go reports is heard.
	tap := d.Events.Tap()
	h := watches(l.s, true)
	h.quiet, h.health, h.turn = false, watch.HealthAsks, false
	d.hold(h)
	return &listener{tap: tap, back: func() { d.hold(watches(l.s, true)) }}
}

func (li *listener) Wake() <-chan struct{} { return li.tap.Wake() }

func (li *listener) Take() (pipeline.Change, bool) {
	sources, watching := li.tap.Take()
	var c pipeline.Change
	for _, src := range sources {
		c |= changeOf(src)
	}
	return c, watching
}

func (li *listener) Close() {
	li.tap.Close()
	li.back()
}

// changeOf is what an event of src tells a run staying green: what the health gate judges (the
// health of the node's services, the reboots in flight), the stop flags, or a wake for a place;
// a source's start may hide any of the first two. The group's lock and queue, its limit, the
// claims, the node's own keys and files, the tick tell it nothing: it hears of a place from its
// turn key, and of a reboot taking or giving back a place from the fleet's holders.
func changeOf(src watch.Source) pipeline.Change {
	switch src {
	case watch.SourceHealth, watch.SourceHolders, watch.SourcePython:
		return pipeline.ChangedHealth
	case watch.SourceStop:
		return pipeline.ChangedStop
	case watch.SourceTurn:
		return pipeline.ChangedTurn
	case watch.SourceStart:
		return pipeline.ChangedHealth | pipeline.ChangedStop
	}
	return 0
}
