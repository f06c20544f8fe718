package main

import (
	"testing"
	"time"
)

// TestTaskTimeoutIsThePythonRebootmgrs: a task may run 120 minutes by default, as under the
// Python rebootmgr: a drain or an evacuation that takes half an hour must not time out, and so
// disable its node, on a node that moved.
func TestTaskTimeoutIsThePythonRebootmgrs(t *testing.T) {
	for _, c := range commands() {
		if c.flags == nil {
			continue
		}
		f := c.flags().Lookup("task-timeout")
		if f == nil {
			continue
		}
		if d, err := time.ParseDuration(f.DefValue); err != nil || d != 120*time.Minute {
			t.Errorf("rebootmgr %s --task-timeout defaults to %s, not the Python rebootmgr's 120 minutes", c.name, f.DefValue)
		}
	}
}
