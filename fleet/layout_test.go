package fleet

import (
	"bytes"
	"strings"
	"testing"
)

// TestTableFitsTerminal: the NOW column is never cut, whatever the width: every word of a long
// reason and of the command that resolves it is in the table, in order; on a terminal, every
// line of it fits the terminal's width (beside its row when there is room, else under it), and
// colours do not count as width.
func TestTableFitsTerminal(t *testing.T) {
	reason := "the boot id b-1 did not change 5m0s after the reboot command ran: " + strings.Repeat("the command said nothing more, ", 8) + "look at journalctl -u rebootmgr"
	command := "rebootmgr unlock n1 --cancel-request --end-maintenance --note-why=the-reboot-command-did-not-reboot-this-machine-at-all"
	st := Status{Nodes: []Node{
		{Node: "n1", Group: "default", RebootRequired: []string{"key"}, InCatalog: true, Operator: &Attention{Reason: reason, Command: command}},
		{Node: "compute-17", Group: "compute", RebootRequired: []string{}, InCatalog: true},
	}}
	for _, tt := range []struct {
		name  string
		width int
		color bool
		// beside says that NOW starts on its row's line.
		beside bool
	}{
		{"not a terminal", 0, false, true},
		{"wide terminal", 400, false, true},
		{"200 columns", 200, false, true},
		{"120 columns", 120, true, true},
		{"80 columns: NOW under its row", 80, false, false},
		{"100 columns", 100, false, true},
		{"narrow: NOW under its row", 60, true, false},
		{"very narrow", 20, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTableFit(&b, st, tt.color, tt.width); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			words := strings.Fields(stripColor(out))
			for _, said := range []string{reason, command, "ok"} {
				if !containsRun(words, strings.Fields(said)) {
					t.Errorf("the table does not say %q whole:\n%s", said, out)
				}
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				if tt.width == 0 {
					break
				}
				row := strings.HasPrefix(l, "NODE") || strings.HasPrefix(l, "n1 ") || strings.HasPrefix(l, "compute-17 ")
				if got := visible(l); got > tt.width && (tt.beside || !row) {
					t.Errorf("a line is %d wide, over %d: %q", got, tt.width, l)
				}
			}
			var n1 string
			for _, l := range lines {
				if strings.HasPrefix(l, "n1 ") {
					n1 = stripColor(l)
				}
			}
			if got := strings.Contains(n1, "WAITS FOR AN OPERATOR"); got != tt.beside {
				t.Errorf("NOW on its row's line: %v, want %v:\n%s", got, tt.beside, out)
			}
			if tt.width == 0 && strings.Count(out, "\n") != 5 {
				t.Errorf("not a terminal, yet rows wrap:\n%s", out)
			}
		})
	}
}

// containsRun says whether want appears in words, one after the other; a word longer than a
// line, broken across lines, counts whole.
func containsRun(words, want []string) bool {
	return strings.Contains(strings.Join(words, ""), strings.Join(want, ""))
}

func stripColor(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); {
		if j := escapeEnd(s, i); j > i {
			i = j
			continue
		}
		out.WriteByte(s[i])
		i++
	}
	return out.String()
}
