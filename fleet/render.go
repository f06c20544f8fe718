package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
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

// maxReason bounds a reason in the table; the JSON document has it whole.
const maxReason = 140

const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// WriteTable writes the status for people; color adds ANSI colours.
func WriteTable(w io.Writer, st Status, color bool) error {
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
		fmt.Fprintf(&b, "group %s (limit %s): ", g.Name, g.LimitSpec)
		switch {
		case g.Error != "":
			fmt.Fprintf(&b, "%s %s\n", paint(red+bold, "UNREADABLE:"), g.Error)
			continue
		case g.Stop != nil:
			fmt.Fprintf(&b, "%s %s; ", paint(red+bold, "STOPPED:"), orNone(g.Stop.Value))
		}
		var holders []string
		for _, h := range st.Holders {
			if h.Group == g.Name {
				name := paint(yellow, h.Node)
				if h.FleetLock {
					name += " (FleetLock host)"
				}
				holders = append(holders, fmt.Sprintf("%s %s since %s (%s)", name, h.Phase, h.Since.UTC().Format(time.RFC3339), time.Duration(h.ForSeconds)*time.Second))
			}
		}
		if len(g.Python) > 0 {
			holders = append(holders, paint(yellow, "the Python rebootmgr")+" ("+place.LegacyHeld(g.Python)+")")
		}
		if len(holders) == 0 {
			b.WriteString("lock free\n")
		} else {
			b.WriteString(strings.Join(holders, ", ") + "\n")
		}
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tGROUP\tREQUESTED\tDISABLED\tMAINT\tPHASE\tDAEMON\tNOW")
	for _, n := range st.Nodes {
		req := strings.Join(n.RebootRequired, ",")
		if req == "" {
			req = "-"
		}
		disabled := "-"
		if n.Disabled != nil {
			disabled = "yes"
		}
		maint := "-"
		if n.Maintenance != nil {
			maint = "yes"
		}
		phase := "-"
		if n.Phase != "" {
			phase = string(n.Phase)
		}
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, group, req, disabled, maint, phase, daemon, now(n, paint))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// now says in a few words what the node would do now.
func now(n Node, paint func(c, s string) string) string {
	switch {
	case n.Operator != nil:
		return paint(red+bold, "WAITS FOR AN OPERATOR") + ": " + truncate(clip.OneLine(n.Operator.Reason)) + "; run: " + n.Operator.Command
	case !n.InCatalog:
		return paint(red, "not in Consul's catalog") + ": its agent left or was never there; nothing is known of its services"
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
			return paint(yellow, queued) + ": " + truncate(clip.OneLine(n.Blocked.Reason))
		}
		return paint(red, "blocked by "+n.Blocked.Gate) + opens + ": " + truncate(clip.OneLine(n.Blocked.Reason))
	case n.Phase != "":
		return paint(yellow, "in progress")

	case len(n.RebootRequired) > 0 && n.Alone != "":
		return paint(green, "ready: may reboot now") + ", alone: " + truncate(n.Alone)
	case len(n.RebootRequired) > 0:
		return paint(green, "ready: may reboot now")
	}
	return paint(green, "ok")
}

func truncate(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return s[:maxReason] + "..."
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no reason given)"
	}
	return clip.OneLine(s)
}
