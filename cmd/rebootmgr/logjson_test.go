package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/internal/strictjson"
)

// TestJSONLogLinesAreStrict: with --log-format json, every line a reboot, its tasks, a failed
// task, a notification that fails, a reboot-required command and the daemon log is one JSON
// object that repeats no key (strict ingesters refuse the line otherwise), and each says which
// part of rebootmgr wrote it.
func TestJSONLogLinesAreStrict(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer hook.Close()
	n := dev(t)
	n.task("pre", "10-drain", "echo draining")
	n.task("post", "10-check", "echo checked")
	json := []string{"--log-format", "json", "--notify-url", hook.URL, "--reboot-required-command", "true"}

	var logs []string
	keep := func(r result) result {
		logs = append(logs, r.stderr)
		return r
	}
	n.expect(keep(n.run("reboot", json...)), 0, "reboot started")
	n.boot()
	n.expect(keep(n.run("reboot", json...)), 0, "reboot finished")
	n.task("pre", "10-drain", "echo cannot drain; exit 1")
	n.expect(keep(n.run("reboot", append(json, "--reboot-required-command", "true")...)), exitTaskFailed)
	n.task("pre", "10-drain", "echo draining")
	n.expect(n.run("enable"), 0)
	d := n.startDaemon(append(json, "--metrics-addr", "127.0.0.1:0")...)
	fleettest.WaitSeen(t, d.Log.Seen(`"msg":"running the reboot command"`), "the daemon's reboot")
	logs = append(logs, d.stop().stderr)

	components := map[string]int{}
	for _, log := range logs {
		for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
			if strings.HasPrefix(line, "rebootmgr ") {
				continue // the command's own last word, for the person who ran it
			}
			m, err := strictjson.Object([]byte(line))
			if err != nil {
				t.Errorf("%v: %s", err, line)
				continue
			}
			c, _ := m["component"].(string)
			components[c]++
			if _, ok := m["task"]; ok && c != "tasks" {
				t.Errorf("a task's line from component %q: %s", c, line)
			}
		}
	}
	for _, c := range []string{"pipeline", "tasks", "notify", "reboot-required-command", "daemon", "metrics"} {
		if components[c] == 0 {
			t.Errorf("no line from component %q (lines by component: %v)", c, components)
		}
	}
}
