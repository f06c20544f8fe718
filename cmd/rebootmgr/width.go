package main

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// tableWidth is how wide a table written to w may be: the terminal's width when w is one (else
// COLUMNS, else 80), 0 when w is not a terminal (no wrapping: a pipe or a file gets each row
// whole, on one line).
func tableWidth(w io.Writer, e env) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		// Not a terminal.
		return 0
	}
	if ws.Col > 0 {
		return int(ws.Col)
	}
	if n, err := strconv.Atoi(e.get("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}
