package fleet

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/window"
)

// Settings are what a node's daemon judges its gates by that Consul does not hold. The daemon
// publishes them in the meta of its service in Consul (see store.Registration), so that status
// and check on any node judge that node as its daemon does.
type Settings struct {
	Version string
	Enabled bool
	// Windows are the reboot windows' specs (window.Parse), Blackouts the blackout dates.
	Windows   []string
	Blackouts []string
	Spread    time.Duration
	Cooldown  time.Duration
	StayGreen time.Duration
	// MinRebootInterval is the least time between two reboots of the node (0: none).
	MinRebootInterval time.Duration
}

// The meta keys of the settings.
const (
	metaVersion   = "version"
	metaEnabled   = "enabled"
	metaWindows   = "reboot_window"
	metaBlackouts = "blackout"
	metaSpread    = "window_spread"
	metaCooldown  = "cooldown"
	metaStayGreen = "stay_green"
	// metaMinRebootInterval is absent from what a daemon without the gate published: none.
	metaMinRebootInterval = "min_reboot_interval"
	// metaUnpublished names the settings too long for a meta value: their value is unknown.
	metaUnpublished = "unpublished"
)

// maxMetaValue is the longest value Consul takes in a service's meta.
const maxMetaValue = 512

// Meta is the settings as service meta. Blackout dates before now's day are left out (they
// no longer matter); a value too long for Consul is left out and named under "unpublished".
func (s Settings) Meta(now time.Time) map[string]string {
	var dates []string
	today := now.UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	for _, d := range s.Blackouts {
		if d >= today {
			dates = append(dates, d)
		}
	}
	slices.Sort(dates)
	m := map[string]string{
		metaVersion:   s.Version,
		metaEnabled:   strconv.FormatBool(s.Enabled),
		metaWindows:   strings.Join(s.Windows, ";"),
		metaBlackouts: strings.Join(dates, ","),
		metaSpread:    s.Spread.String(),
		metaCooldown:  s.Cooldown.String(),
		metaStayGreen: s.StayGreen.String(),

		metaMinRebootInterval: s.MinRebootInterval.String(),
	}
	var unpublished []string
	for _, k := range []string{metaWindows, metaBlackouts} {
		if len(m[k]) > maxMetaValue {
			delete(m, k)
			unpublished = append(unpublished, k)
		}
	}
	if len(unpublished) > 0 {
		m[metaUnpublished] = strings.Join(unpublished, ",")
	}
	return m
}

// ParseSettings reads the settings a daemon published; an error says which cannot be known.
func ParseSettings(meta map[string]string) (Settings, error) {
	s := Settings{Version: meta[metaVersion]}
	if u := meta[metaUnpublished]; u != "" {
		return s, fmt.Errorf("the daemon's %s is too long to publish in Consul: judged only on its node", u)
	}
	var err error
	if s.Enabled, err = strconv.ParseBool(meta[metaEnabled]); err != nil {
		return s, fmt.Errorf("service meta %s=%q: %w", metaEnabled, meta[metaEnabled], err)
	}
	if w := meta[metaWindows]; w != "" {
		s.Windows = strings.Split(w, ";")
	}
	if b := meta[metaBlackouts]; b != "" {
		s.Blackouts = strings.Split(b, ",")
	}
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{{metaSpread, &s.Spread}, {metaCooldown, &s.Cooldown}, {metaStayGreen, &s.StayGreen}, {metaMinRebootInterval, &s.MinRebootInterval}} {
		if _, ok := meta[d.key]; !ok && d.key == metaMinRebootInterval {
			continue
		}
		if *d.to, err = time.ParseDuration(meta[d.key]); err != nil {
			return s, fmt.Errorf("service meta %s=%q: %w", d.key, meta[d.key], err)
		}
	}
	return s, nil
}

// Schedule is node's schedule under these settings.
func (s Settings) Schedule(node string) (window.Schedule, error) {
	dates := map[string]bool{}
	for _, d := range s.Blackouts {
		dates[d] = true
	}
	return window.Build(s.Windows, dates, node, s.Spread)
}

// Daemon is a node's daemon as Consul knows it: whether it runs, its status line, and the
// settings it judges by.
type Daemon struct {
	// State is what its check says.
	State DaemonState
	// Status is its check's output: the daemon's one-line status.
	Status   string
	Settings Settings
	// SettingsError says why its settings cannot be known ("" when they can).
	SettingsError string
	// Tasks is what it found of its tasks when it registered; nil when it did not say.
	Tasks *Tasks
}

// DaemonState is what a daemon's check says of it.
type DaemonState int

// The states of a daemon.
const (
	// DaemonDown: it stopped, or has not said it runs for longer than its check's TTL.
	DaemonDown DaemonState = iota
	// DaemonRunning: it runs and goes on by itself.
	DaemonRunning
	// DaemonNeedsOperator: it runs, and its node waits for an operator.
	DaemonNeedsOperator
)

// String names the state as status shows it.
func (d DaemonState) String() string {
	switch d {
	case DaemonRunning:
		return "running"
	case DaemonNeedsOperator:
		return "waiting for an operator"
	}
	return "down"
}

// Unpublished says that no daemon of node published its settings.
func Unpublished(node string) string {
	return "no daemon of " + node + " published its settings in Consul: its reboot windows, blackout dates, cooldown, stay-green and min reboot interval are not known here"
}

// metaTasks is the meta key of what a daemon found of its pre- and post-boot tasks when it
// registered: "pre=N,post=M", or "error: " and why they cannot run (cut to fit a meta value).
// Absent from an older daemon's meta: not known.
const metaTasks = "tasks"

// TasksMeta adds to meta what a daemon found of its tasks: how many of each phase, or why they
// cannot run.
func TasksMeta(meta map[string]string, pre, post int, err error) {
	if err != nil {
		meta[metaTasks] = clip.Within("error: "+clip.OneLine(err.Error()), maxMetaValue)
		return
	}
	meta[metaTasks] = fmt.Sprintf("pre=%d,post=%d", pre, post)
}

// Tasks is what a daemon found of its tasks when it registered (see TasksMeta).
type Tasks struct {
	Pre, Post int
	// Err is why they cannot run (nil when they can).
	Err error
}

// ParseTasks reads what a daemon published of its tasks; false when it published nothing that
// can be read (an older daemon): they are not known.
func ParseTasks(meta map[string]string) (Tasks, bool) {
	v, ok := meta[metaTasks]
	if !ok {
		return Tasks{}, false
	}
	if why, isErr := strings.CutPrefix(v, "error: "); isErr {
		return Tasks{Err: errors.New("its daemon found, when it started: " + why)}, true
	}
	var t Tasks
	if _, err := fmt.Sscanf(v, "pre=%d,post=%d", &t.Pre, &t.Post); err != nil {
		return Tasks{}, false
	}
	return t, true
}
