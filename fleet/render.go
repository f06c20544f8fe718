package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
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
		v := st.Stop.Value
		if v == "" {
			v = "(no reason given)"
		}
		fmt.Fprintf(&b, "%s %s\n", paint(red+bold, "STOPPED:"), oneLine(v))
	} else {
		fmt.Fprintf(&b, "stop flag: %s\n", "not set")
	}
	switch {
	case st.LockError != "":
		fmt.Fprintf(&b, "%s %s\n", paint(red+bold, "LOCK UNREADABLE:"), st.LockError)
	case len(st.Holders) == 0:
		fmt.Fprintf(&b, "reboot lock (limit %d): free\n", st.Limit)
	default:
		fmt.Fprintf(&b, "reboot lock (limit %d):\n", st.Limit)
		for _, h := range st.Holders {
			fmt.Fprintf(&b, "  %s %s since %s (%s)\n", paint(yellow, h.Node), h.Phase, h.Since.UTC().Format(time.RFC3339), time.Duration(h.ForSeconds)*time.Second)
		}
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREQUESTED\tDISABLED\tPHASE\tNOW")
	for _, n := range st.Nodes {
		req := strings.Join(n.RebootRequired, ",")
		if req == "" {
			req = "-"
		}
		disabled := "-"
		if n.Disabled != nil {
			disabled = "yes"
		}
		phase := "-"
		if n.Phase != "" {
			phase = string(n.Phase)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Node, req, disabled, phase, now(n, paint))
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
	case n.Blocked != nil:
		return paint(red, "blocked by "+n.Blocked.Gate) + ": " + truncate(oneLine(n.Blocked.Reason))
	case n.Phase != "":
		return paint(yellow, "in progress")
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

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
