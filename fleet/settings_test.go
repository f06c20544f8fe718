package fleet

import (
	"strings"
	"testing"
	"time"
)

// TestSettingsMinRebootInterval: the min reboot interval a daemon publishes is read back; a
// daemon that publishes none (one without the gate) has none, and a value that is no duration
// is an error that names it.
func TestSettingsMinRebootInterval(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	published := Settings{Version: "1", Enabled: true, MinRebootInterval: 90 * time.Minute}.Meta(now)
	for _, tt := range []struct {
		name string
		meta func(map[string]string)
		want time.Duration
		err  string
	}{
		{"published", func(map[string]string) {}, 90 * time.Minute, ""},
		{"by a daemon without the gate", func(m map[string]string) { delete(m, metaMinRebootInterval) }, 0, ""},
		{"not a duration", func(m map[string]string) { m[metaMinRebootInterval] = "soon" }, 0, "min_reboot_interval"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range published {
				m[k] = v
			}
			tt.meta(m)
			s, err := ParseSettings(m)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil || s.MinRebootInterval != tt.want {
				t.Fatalf("%v, %v; want %s", s.MinRebootInterval, err, tt.want)
			}
		})
	}
}
