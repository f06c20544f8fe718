// Package window says when reboots may start: weekly windows such as
// "Mon-Fri 02:00-05:00 Europe/Berlin" and blackout dates such as public holidays. Times are
// judged on the wall clock of the window's time zone, so a window keeps its local hours across
// daylight saving changes. Everything takes the time as an argument.
package window

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"time"
)

// Window is a weekly range of wall-clock time in a time zone. A window whose end is not after
// its start runs past midnight into the next day.
type Window struct {
	days       [7]bool // by time.Weekday, the days the window starts on
	start, end int     // minutes since midnight; end may be 24*60
	loc        *time.Location
	spec       string
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Parse reads "DAYS HH:MM-HH:MM [ZONE]": DAYS is a day (Mon), a range (Mon-Fri), a list
// (Sat,Sun), or "daily"; ZONE is an IANA name (default UTC).
func Parse(spec string) (Window, error) {
	fields := strings.Fields(spec)
	if len(fields) < 2 || len(fields) > 3 {
		return Window{}, fmt.Errorf("reboot window %q: want DAYS HH:MM-HH:MM [ZONE], e.g. \"Mon-Fri 02:00-05:00 Europe/Berlin\"", spec)
	}
	w := Window{loc: time.UTC, spec: spec}
	if err := w.parseDays(fields[0]); err != nil {
		return Window{}, fmt.Errorf("reboot window %q: %w", spec, err)
	}
	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return Window{}, fmt.Errorf("reboot window %q: want HH:MM-HH:MM", spec)
	}
	var err error
	if w.start, err = clock(from, false); err != nil {
		return Window{}, fmt.Errorf("reboot window %q: %w", spec, err)
	}
	if w.end, err = clock(to, true); err != nil {
		return Window{}, fmt.Errorf("reboot window %q: %w", spec, err)
	}
	if w.start == w.end {
		return Window{}, fmt.Errorf("reboot window %q: empty", spec)
	}
	if len(fields) == 3 {
		if w.loc, err = time.LoadLocation(fields[2]); err != nil {
			return Window{}, fmt.Errorf("reboot window %q: time zone: %w", spec, err)
		}
	}
	return w, nil
}

func (w *Window) parseDays(s string) error {
	if strings.EqualFold(s, "daily") {
		for i := range w.days {
			w.days[i] = true
		}
		return nil
	}
	for _, part := range strings.Split(strings.ToLower(s), ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := dayNames[from]
		if !ok {
			return fmt.Errorf("unknown day %q (Mon, Tue, ... Sun)", from)
		}
		if !isRange {
			w.days[a] = true
			continue
		}
		b, ok := dayNames[to]
		if !ok {
			return fmt.Errorf("unknown day %q (Mon, Tue, ... Sun)", to)
		}
		for d := a; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func clock(s string, end bool) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || len(s) != 5 {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	if end && h == 24 && m == 0 {
		return 24 * 60, nil
	}
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("time %q: want HH:MM between 00:00 and 24:00", s)
	}
	return h*60 + m, nil
}

func (w Window) String() string { return w.spec }

// Contains reports whether t falls inside the window.
func (w Window) Contains(t time.Time) bool {
	local := t.In(w.loc)
	minute := local.Hour()*60 + local.Minute()
	day := local.Weekday()
	yesterday := (day + 6) % 7
	if w.start < w.end {
		return w.days[day] && minute >= w.start && minute < w.end
	}
	// Past midnight: the late part belongs to the day it started on.
	return (w.days[day] && minute >= w.start) || (w.days[yesterday] && minute < w.end)
}

// openedAt is when the occurrence of the window that contains t opened.
func (w Window) openedAt(t time.Time) time.Time {
	local := t.In(w.loc)
	day := local
	if w.start >= w.end && local.Hour()*60+local.Minute() < w.end {
		day = local.AddDate(0, 0, -1)
	}
	return time.Date(day.Year(), day.Month(), day.Day(), w.start/60, w.start%60, 0, 0, w.loc)
}

// length is how long the window is open.
func (w Window) length() time.Duration {
	end := w.end
	if end <= w.start {
		end += 24 * 60
	}
	return time.Duration(end-w.start) * time.Minute
}

// Schedule is the windows reboots may start in and the dates they may not.
type Schedule struct {
	Windows []Window
	// Blackouts are dates ("2006-01-02") on which no reboot starts, on the wall clock of the
	// first window's time zone (UTC without windows).
	Blackouts map[string]bool
	// Offset is how long after a window opens this node may start (see SpreadOffset), so that
	// the nodes of a group do not all start at the opening.
	Offset time.Duration
}

// SpreadOffset places node at a moment within spread, the same every time (a hash of its name,
// in whole minutes), so that each node of a group has its own start in every window.
func SpreadOffset(node string, spread time.Duration) time.Duration {
	minutes := int64(spread / time.Minute)
	if minutes <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(node))
	return time.Duration(h.Sum64()%uint64(minutes)) * time.Minute
}

// CheckSpread refuses a spread that would leave a node no time in the shortest window.
func (s Schedule) CheckSpread(spread time.Duration) error {
	for _, w := range s.Windows {
		if spread >= w.length() {
			return fmt.Errorf("spread %s is not shorter than the reboot window %q", spread, w)
		}
	}
	return nil
}

// Open reports whether a reboot may start at t: inside a window (any time, without windows)
// and not on a blackout date.
func (s Schedule) Open(t time.Time) bool {
	if s.Blackouts[t.In(s.loc()).Format(time.DateOnly)] {
		return false
	}
	if len(s.Windows) == 0 {
		return true
	}
	for _, w := range s.Windows {
		if w.Contains(t) && t.Sub(w.openedAt(t)) >= s.Offset {
			return true
		}
	}
	return false
}

func (s Schedule) loc() *time.Location {
	if len(s.Windows) > 0 {
		return s.Windows[0].loc
	}
	return time.UTC
}

// Next is the first moment at or after t when the schedule is open, within the next 400
// days (zero if never). It steps a minute at a time: windows open on minute boundaries.
func (s Schedule) Next(t time.Time) time.Time {
	if s.Open(t) {
		return t
	}
	m := t.Truncate(time.Minute).Add(time.Minute)
	for end := t.Add(400 * 24 * time.Hour); m.Before(end); m = m.Add(time.Minute) {
		if s.Open(m) {
			return m
		}
	}
	return time.Time{}
}

// ParseBlackouts reads dates, one per line or separated by commas; '#' starts a comment.
func ParseBlackouts(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, d := range strings.Split(line, ",") {
			d = strings.TrimSpace(d)
			if d == "" {
				continue
			}
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return nil, fmt.Errorf("blackout date %q: want YYYY-MM-DD", d)
			}
			out[d] = true
		}
	}
	return out, sc.Err()
}

// Build makes node's schedule from window specs (see Parse), blackout dates and the spread of
// its group's starts within each window (see SpreadOffset; zero for none).
func Build(specs []string, blackouts map[string]bool, node string, spread time.Duration) (Schedule, error) {
	s := Schedule{Blackouts: map[string]bool{}}
	for _, spec := range specs {
		w, err := Parse(spec)
		if err != nil {
			return Schedule{}, err
		}
		s.Windows = append(s.Windows, w)
	}
	if spread > 0 {
		if len(s.Windows) == 0 {
			return Schedule{}, fmt.Errorf("a window spread needs a reboot window (--window-spread needs a --reboot-window)")
		}
		if err := s.CheckSpread(spread); err != nil {
			return Schedule{}, err
		}
		s.Offset = SpreadOffset(node, spread)
	}
	for d := range blackouts {
		s.Blackouts[d] = true
	}
	return s, nil
}
