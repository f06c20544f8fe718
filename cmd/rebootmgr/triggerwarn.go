package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/store"
)

// warnRequest tells, on stderr, what keeps a node just asked to reboot from rebooting soon: the
// fleet's or its group's stop flag, its disabled mark, its daemon down, not enabled or waiting
// for an operator, or no daemon at all. The request stays written; what cannot be read is said,
// never taken for "nothing in the way".
func (o *operator) warnRequest(ctx context.Context, node string, stderr io.Writer) {
	warn := func(format string, args ...any) {
		fmt.Fprintf(stderr, "warning: "+format+"\n", args...)
	}
	group, err := o.groupOf(ctx, node, "")
	if err != nil {
		warn("could not read %s's group, so not whether it is stopped: %s", node, oneLine(err))
		group = store.DefaultGroup
	}
	marks := []struct{ key, what, remedy string }{
		{o.keys.Stop(), "the fleet is stopped", "rebootmgr resume"},
		{o.keys.GroupStop(group), "group " + group + " is stopped", "rebootmgr resume --group " + group},
		{o.keys.Disabled(node), node + " is disabled", "rebootmgr enable " + node},
	}
	for _, m := range marks {
		switch f, err := o.store.Flag(ctx, m.key); {
		case err != nil:
			warn("could not read %s (%s): %s", m.key, m.what, oneLine(err))
		case f.Set:
			warn("%s (%s): %s reboots only after %s", m.what, clip.OneLine(orNone(f.Value)), node, m.remedy)
		}
	}
	d, registered, err := o.store.Daemon(ctx, node)
	switch {
	case err != nil:
		warn("could not read whether %s's daemon runs: %s", node, oneLine(err))
	case !registered:
		warn("no rebootmgr daemon has registered on %s (not installed, not enabled, or never started): the request waits until one runs there, or until rebootmgr reboot runs on it", node)
	case d.State == fleet.DaemonDown:
		warn("%s's daemon is down (%s): the request waits until it runs again (systemctl status rebootmgr on %s)", node, clip.OneLine(orNone(d.Status)), node)
	case d.SettingsError == "" && !d.Settings.Enabled:
		warn("%s's daemon is not enabled: the request waits until its operator enables it (REBOOTMGR_ENABLED=true in its configuration file)", node)
	case d.State == fleet.DaemonNeedsOperator:
		warn("%s waits for an operator: %s", node, clip.OneLine(d.Status))
	}
}
