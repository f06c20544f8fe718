// Package monotonic makes readings of a clock whose wall and monotonic faces differ: what a
// machine's time.Now returns after its wall clock was stepped.
package monotonic

import (
	"time"
	"unsafe"
)

// A machine's clock has two faces: the wall clock, which an operator or NTP may step, and the
// monotonic clock, which only moves on. Go's time.Time carries both when read from time.Now,
// and compares and subtracts by the monotonic reading when both times have one: a daemon that
// judges a deadline by times it read itself is not fooled by a jump of its wall clock. A
// simulated node's clock must read the same way, and the time package offers no way to make such
// a reading: Reading lays one out as the time package does (see time.Time: a flag, 33 bits
// of seconds since 1885 and 30 of nanoseconds in wall; the monotonic reading in ext), and
// TestReadingJumpsAsAMachinesDo holds it to the package's own arithmetic.

const (
	secondsPerDay  = 86400
	unixToInternal = (1969*365 + 1969/4 - 1969/100 + 1969/400) * secondsPerDay
	wallToInternal = (1884*365 + 1884/4 - 1884/100 + 1884/400) * secondsPerDay
	hasMonotonic   = 1 << 63
)

// timeLayout is time.Time's.
type timeLayout struct {
	wall uint64
	ext  int64
	loc  *time.Location
}

// Reading is the reading of a clock whose wall shows wall (in UTC) and whose monotonic
// clock shows mono.
func Reading(wall time.Time, mono time.Duration) time.Time {
	sec := wall.Unix() + unixToInternal - wallToInternal
	if sec < 0 || sec >= 1<<33 || mono <= 0 {
		return wall
	}
	t := timeLayout{wall: hasMonotonic | uint64(sec)<<30 | uint64(wall.Nanosecond()), ext: int64(mono)}
	return *(*time.Time)(unsafe.Pointer(&t))
}
