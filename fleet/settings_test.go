package fleet

import (
	"errors"
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

// TestTasksMeta: what a daemon found of its tasks reads back as it found it, within the bound of
// a meta value; a daemon that said nothing of them leaves them not known.
func TestTasksMeta(t *testing.T) {
	long := errors.New("task /etc/rebootmgr/pre_boot_tasks/10-drain is writable by others: " + strings.Repeat("x", 2000))
	for _, tt := range []struct {
		name      string
		pre, post int
		err       error
	}{
		{"tasks", 2, 1, nil},
		{"none", 0, 0, nil},
		{"missing", 0, 0, errors.New("tasks directory /etc/rebootmgr does not exist")},
		{"unsafe, long", 0, 0, long},
	} {
		t.Run(tt.name, func(t *testing.T) {
			meta := map[string]string{}
			TasksMeta(meta, tt.pre, tt.post, tt.err)
			if len(meta[metaTasks]) > maxMetaValue {
				t.Fatalf("%d bytes, over Consul's %d", len(meta[metaTasks]), maxMetaValue)
			}
			got, ok := ParseTasks(meta)
			if !ok || got.Pre != tt.pre || got.Post != tt.post || (got.Err == nil) != (tt.err == nil) {
				t.Fatalf("read back %+v, %v", got, ok)
			}
			if tt.err != nil && !strings.Contains(got.Err.Error(), tt.err.Error()[:40]) {
				t.Fatalf("the reason is lost: %v", got.Err)
			}
		})
	}
	if _, ok := ParseTasks(map[string]string{}); ok {
		t.Fatal("a daemon that said nothing of its tasks: known")
	}
}
