package fleet

import (
	"strings"
	"unicode/utf8"
)

// The table's layout: every column but the last as wide as its widest cell, two spaces apart;
// the last, NOW, wraps at a terminal's width, never cut.
const (
	// colGap separates the columns.
	colGap = 2
	// minNow is the narrowest the NOW column gets beside the others; on a narrower terminal it
	// goes on lines of its own under its row, indented by nowIndent.
	minNow    = 24
	nowIndent = 4
)

// writeRows writes rows as a table for a terminal width columns wide (0: no wrapping).
func writeRows(b *strings.Builder, rows [][]string, width int) {
	if len(rows) == 0 {
		return
	}
	last := len(rows[0]) - 1
	widths := make([]int, last)
	for _, row := range rows {
		for i, cell := range row[:last] {
			widths[i] = max(widths[i], visible(cell))
		}
	}
	start := 0
	for _, w := range widths {
		start += w + colGap
	}
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row[:last] {
			line.WriteString(cell)
			line.WriteString(strings.Repeat(" ", widths[i]-visible(cell)+colGap))
		}
		now := row[last]
		switch {
		case width <= 0:
			b.WriteString(line.String() + now + "\n")
		case width-start >= minNow:
			indent := "\n" + strings.Repeat(" ", start)
			b.WriteString(line.String() + strings.Join(wrap(now, width-start), indent) + "\n")
		default:
			indent := strings.Repeat(" ", nowIndent)
			b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
			for _, l := range wrap(now, max(1, width-nowIndent)) {
				b.WriteString(indent + l + "\n")
			}
		}
	}
}

// wrap breaks s into lines of at most width visible characters, between words where it can;
// a word longer than a line is broken inside. Nothing is left out.
func wrap(s string, width int) []string {
	var lines []string
	cur, n := "", 0
	for _, word := range strings.Split(s, " ") {
		wn := visible(word)
		if n > 0 && n+1+wn <= width {
			cur, n = cur+" "+word, n+1+wn
			continue
		}
		if n > 0 {
			lines = append(lines, cur)
			cur, n = "", 0
		}
		for wn > width {
			head, rest := splitVisible(word, width)
			lines = append(lines, head)
			word, wn = rest, visible(rest)
		}
		cur, n = word, wn
	}
	return append(lines, cur)
}

// visible is how many characters of s a terminal shows: its runes, but for ANSI colour
// sequences.
func visible(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if j := escapeEnd(s, i); j > i {
			i = j
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}

// splitVisible splits s after its first n visible characters.
func splitVisible(s string, n int) (head, rest string) {
	seen := 0
	for i := 0; i < len(s); {
		if j := escapeEnd(s, i); j > i {
			i = j
			continue
		}
		if seen == n {
			return s[:i], s[i:]
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		seen++
	}
	return s, ""
}

// escapeEnd is the end of the ANSI sequence "ESC [ ... m" at s[i:], i when there is none.
func escapeEnd(s string, i int) int {
	if !strings.HasPrefix(s[i:], "\x1b[") {
		return i
	}
	if j := strings.IndexByte(s[i:], 'm'); j > 0 {
		return i + j + 1
	}
	return i
}
