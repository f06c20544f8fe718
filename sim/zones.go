package sim

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/lock"
)

// checkZones checks, as n goes down, that under a limit bounded per zone the machines of its
// group that are down (down, n among them) are of one zone, at most the bound of them, and that
// one of no zone (a node without the node meta, a FleetLock host) is down alone: nothing says
// which failure domain it shares. A limit written within the last minute is not judged: the
// daemon judged the one it read.
func (w *World) checkZones(n *node, down []*node) {
	v, _, _ := w.model.Get(w.keys.GroupLimit(n.group))
	l, err := lock.ParseLimit(v)
	if err != nil || l.PerZone == 0 || len(down) < 2 || w.sched.now.Sub(w.chk.limitAt[n.group]) < time.Minute {
		return
	}
	zones := map[string]int{}
	for _, o := range down {
		if o.zone == "" {
			w.violate("%s, of no zone, down beside %s under %s's limit %q: a node of no zone is a zone of its own", o.name, joinNames(down), n.group, v)
			return
		}
		zones[o.zone]++
	}
	if len(zones) > 1 {
		w.violate("%s down at once, of zones %s, under %s's limit %q: one zone at a time", joinNames(down), strings.Join(slices.Sorted(maps.Keys(zones)), ","), n.group, v)
		return
	}
	if len(down) > l.PerZone {
		w.violate("%d nodes of zone %s down at once (%s) under %s's limit %q", len(down), down[0].zone, joinNames(down), n.group, v)
	}
}
