package release010

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Settings are what a node's daemon judges its gates by that Consul does not hold. The daemon
// publishes them in the meta of its service (store.DaemonService), so that status and check on
// any node judge that node as its daemon does.
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
