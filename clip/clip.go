// Package clip bounds the free text rebootmgr writes to Consul: reasons, task output, what
// asked for a reboot. A Consul value may not exceed 512 kB, and one large text must never make
// a shared record (the lock, the history, a mark) too large to be written again.
package clip

import (
	"strings"
	"unicode/utf8"
)

// Max is the most bytes of free text rebootmgr writes for one reason or detail.
const Max = 2 << 10

// MaxReason is the most bytes of a reason an operator types. It is half of Max: what rebootmgr
// adds to it (who wrote it, where and when; what kind of request it is) fits beside it, so the
// text is stored whole. A longer one is refused, never cut.
const MaxReason = Max / 2

// Marker ends a text that was cut.
const Marker = "… (cut)"

// Text returns s when it is at most Max bytes long; else as much of its start as fits, cut
// between two characters, followed by Marker: Max bytes at most in all.
func Text(s string) string {
	return Within(s, Max)
}

// Within is Text with a bound of limit bytes (at least len(Marker)), for a text that shares Max
// with what is written beside it.
func Within(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit - len(Marker)
	for i := 0; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n] + Marker
}

// OneLine is s on one line: every run of white space, line breaks included, one space.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
