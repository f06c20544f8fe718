package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/place"
)

// WriteJSON writes the status as the documented JSON document.
func WriteJSON(w io.Writer, st Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// WriteTable writes the status for people, each row whole; color adds ANSI colours.
func WriteTable(w io.Writer, st Status, color bool) error { return WriteTableFit(w, st, color, 0) }

// WriteTableFit is WriteTable for a terminal width columns wide (0: not a terminal): the NOW
// column wraps within it, never cut, so that no reason and no remedy is hidden.
func WriteTableFit(w io.Writer, st Status, color bool, width int) error {
	paint := func(c, s string) string {
		if !color {
			return s
		}
		return c + s + reset
	}
	var b strings.Builder
	if st.Stop != nil {
		fmt.Fprintf(&b, "%s %s\n", paint(red+bold, "FLEET STOPPED:"), orNone(st.Stop.Value))
	} else {
		fmt.Fprintf(&b, "stop flag: %s\n", "not set")
	}
	for _, g := range st.Groups {
		fmt.Fprintf(&b, "group %s (limit %s): %s\n", g.Name, g.LimitSpec, groupLine(g, st.Holders, paint))
	}
	b.WriteString("\n")
	rows := [][]string{{"NODE", "GROUP", "REQUESTED", "DISABLED", "MAINT", "PHASE", "DAEMON", "NOW"}}
	for _, n := range st.Nodes {
		rows = append(rows, nodeRow(n, paint))
	}
	writeRows(&b, rows, width)
	_, err := io.WriteString(w, b.String())
	return err
}

// groupLine says what holds group g's lock, of holders (every group's), after its limit.
func groupLine(g Group, holders []Holder, paint func(c, s string) string) string {
	if g.Error != "" {
		return paint(red+bold, "UNREADABLE:") + " " + g.Error
	}
	stopped := ""
	if g.Stop != nil {
		stopped = paint(red+bold, "STOPPED:") + " " + orNone(g.Stop.Value) + "; "
	}
	var held []string
	for _, h := range holders {
		if h.Group == g.Name {
			name := paint(yellow, h.Node)
			if h.FleetLock {
				name += " (FleetLock host)"
			}
			held = append(held, fmt.Sprintf("%s %s since %s (%s)", name, h.Phase, h.Since.UTC().Format(time.RFC3339), time.Duration(h.ForSeconds)*time.Second))
		}
	}
	if len(g.Python) > 0 {
		held = append(held, paint(yellow, "the Python rebootmgr")+" ("+place.LegacyHeld(g.Python)+")")
	}
	if len(held) == 0 {
		return stopped + "lock free"
	}
	return stopped + strings.Join(held, ", ")
}

// nodeRow is the table's row of n.
func nodeRow(n Node, paint func(c, s string) string) []string {
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	yes := func(set bool) string {
		if set {
			return "yes"
		}
		return "-"
	}
	phase := or(string(n.Phase), "-")
	if n.FleetLock {
		// The place is a FleetLock host's, never the daemon's of a node of the same name.
		phase += " (FleetLock host)"
	}
	daemon := "none"
	if n.Daemon != nil {
		daemon = n.Daemon.State
		if !n.Daemon.Enabled && n.Daemon.State != "down" {
			daemon = "not enabled"
		}
	}
	group := n.Group
	if n.Python == PythonGroupUnknown {
		group += "?" // a Python node given --group: Consul does not hold it
	}
	return []string{n.Node, group, or(strings.Join(n.RebootRequired, ","), "-"), yes(n.Disabled != nil), yes(n.Maintenance != nil), phase, daemon, now(n, paint)}
}

// now says in a few words what the node would do now.
func now(n Node, paint func(c, s string) string) string {
	switch {
	case n.Operator != nil:
		return paint(red+bold, "WAITS FOR AN OPERATOR") + ": " + clip.OneLine(n.Operator.Reason) + "; run: " + n.Operator.Command
	case !n.InCatalog:
		return paint(red, "not in Consul's catalog") + ": its agent left or was never there; nothing is known of its services"
	case n.Phase == "" && NotEnabled(n.Daemon):
		// Whatever its gates say, nothing takes it anywhere.
		if len(n.RebootRequired) > 0 {
			return paint(red, "requested, but daemon not enabled") + ": " + NotEnabledSays + " (" + enableRemedy(n) + ")"
		}
		return paint(yellow, "daemon not enabled") + ": " + NotEnabledSays + " (" + enableRemedy(n) + ")"
	case n.Blocked != nil:
		opens := ""
		if n.NextWindow != nil {
			opens = " (opens " + n.NextWindow.UTC().Format(time.RFC3339) + ")"
		}
		if q := n.Queue; q != nil && q.Blocked == "" {
			// Waiting its turn: the place says more than the holders' names.
			queued := fmt.Sprintf("queued: place %d, %d ahead", q.Place, q.Ahead)
			if q.Estimate != nil {
				queued += ", starts about " + q.Estimate.UTC().Format(time.RFC3339)
			}
			return paint(yellow, queued) + ": " + clip.OneLine(n.Blocked.Reason)
		}
		return paint(red, "blocked by "+n.Blocked.Gate) + opens + ": " + clip.OneLine(n.Blocked.Reason)
	case n.Phase != "":
		return paint(yellow, "in progress")

	case len(n.RebootRequired) > 0 && nobodyReboots(n) != "":
		return paint(red, "requested, but nothing reboots it") + ": " + nobodyReboots(n)
	case len(n.RebootRequired) > 0 && n.Alone != "":
		return paint(green, "ready: may reboot now") + ", alone: " + n.Alone
	case len(n.RebootRequired) > 0:
		return paint(green, "ready: may reboot now")
	case n.Maintenance != nil:
		// Never "ok": a node left in maintenance counts as failing for its services' peers.
		return paint(yellow, "in maintenance") + ": " + orNone(*n.Maintenance)
	}
	return paint(green, "ok")
}

// nobodyReboots says why no daemon will reboot the node, and what to do ("" when its daemon
// runs and is enabled).
func nobodyReboots(n Node) string {
	d := n.Daemon
	switch {
	case d == nil:
		return "no daemon of rebootmgr ever registered on " + n.Node + " (not installed, not enabled, or its token lacks service \"rebootmgr\" write); rebootmgr reboot on " + n.Node + " reboots it by hand"
	case d.State == DaemonDown.String():
		return "its daemon is down (" + clip.OneLine(d.Status) + "): systemctl status rebootmgr on " + n.Node
	case !d.Enabled:
		return "its daemon is not enabled: " + NotEnabledSays + " (" + enableRemedy(n) + ")"
	}
	return ""
}

// NotEnabledSays is what status and check say of a node whose daemon is not enabled.
const NotEnabledSays = "nothing reboots this node until REBOOTMGR_ENABLED=true"

// NotEnabled says whether d is a daemon that runs, not enabled (REBOOTMGR_ENABLED=false).
func NotEnabled(d *DaemonRow) bool { return d != nil && !d.Enabled && d.State != DaemonDown.String() }

// enableRemedy says how to enable n's daemon: what the daemon says (it knows where its setting
// came from), else the package's way.
func enableRemedy(n Node) string {
	if d := n.Daemon; d != nil {
		if how, ok := strings.CutPrefix(clip.OneLine(d.Status), "not enabled: "); ok && how != "" {
			return "on " + n.Node + ": " + how
		}
	}
	return "on " + n.Node + ": set REBOOTMGR_ENABLED=true in /etc/default/rebootmgr, then systemctl restart rebootmgr"
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no reason given)"
	}
	return clip.OneLine(s)
}
