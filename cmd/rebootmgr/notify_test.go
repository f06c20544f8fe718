package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/notify"
)

// TestNotifications: a reboot, its end and a failed task are told to a webhook (which fails
// once and is retried) and fired as Consul events; a webhook that is down changes nothing.
func TestNotifications(t *testing.T) {
	var mu sync.Mutex
	var got []notify.Message
	calls := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		var m notify.Message
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		got = append(got, m)
	}))
	defer hook.Close()

	n := dev(t)
	n.expect(n.run("trigger"), 0)
	n.expect(n.run("reboot", "--check-triggers", "--notify-url", hook.URL), 0, "reboot started")
	n.boot()
	n.expect(n.run("reboot", "--check-triggers", "--notify-url", hook.URL), 0, "reboot finished")
	n.task("pre", "10-drain", "echo no; exit 1")
	n.expect(n.run("reboot", "--notify-url", hook.URL), exitTaskFailed)

	mu.Lock()
	kinds := []string{}
	for _, m := range got {
		kinds = append(kinds, m.Kind)
		if m.Node != "n1" || m.Group != "default" || m.Time.IsZero() {
			t.Errorf("message without its node, group or time: %+v", m)
		}
	}
	mu.Unlock()
	want := []string{"reboot started", "reboot finished", "task failed"}
	if len(kinds) != len(want) || kinds[0] != want[0] || kinds[1] != want[1] || kinds[2] != want[2] {
		t.Fatalf("webhook got %v, want %v", kinds, want)
	}
	events, _, err := n.agent.Client.Event().List(notify.EventName, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("%d consul events named %s, want 3", len(events), notify.EventName)
	}

	// A webhook that is down: the reboot goes on, within the notification's time bound.
	hook.Close()
	n.expect(n.run("enable"), 0)
	n.task("pre", "10-drain", "true")
	n.expect(n.run("reboot", "--notify-url", hook.URL), 0, "reboot started")
}

// TestNotifiedBeyondReboots: a reboot that did not happen is told once, however often it is
// seen, and recorded once in the history; an operator's stop, resume and unlock are told, with
// who did it, in the format --notify-format names (here Slack's).
func TestNotifiedBeyondReboots(t *testing.T) {
	texts := make(chan string, 20)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Text string `json:"text"`
		}
		body, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil || r.URL.Path != "/services/T/B/X" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		texts <- m.Text
		io.WriteString(w, "ok")
	}))
	defer hook.Close()
	slack := []string{"--notify-url", hook.URL + "/services/T/B/X", "--notify-format", "slack"}

	n := dev(t)
	n.expect(n.run("trigger"), 0)
	n.expect(n.run("reboot", append(slack, "--check-triggers")...), 0, "reboot started")
	// The reboot command ran, and the machine did not reboot: the boot id is the same, right
	// after the command (nothing told: the machine may be going down) and minutes later.
	n.expect(n.run("reboot", slack...), exitNotRebooted)
	for range 3 {
		n.expect(n.run("reboot", append(slack, "--clock-offset", "10m")...), exitNotRebooted)
	}
	n.expect(n.run("stop", append(slack, "--reason", "looking at n1")...), 0)
	n.expect(n.run("unlock", append(slack, "n1", "--force", "--cancel-request")...), 0)
	n.expect(n.run("resume", slack...), 0)
	n.expect(n.run("resume", slack...), 0, "not stopped")

	var got []string
	for len(texts) > 0 {
		got = append(got, <-texts)
	}
	want := []string{
		"rebootmgr: reboot started on n1 (group default)",
		"rebootmgr: did not reboot on n1 (group default): the reboot lock says n1 is rebooting",
		"rebootmgr: stopped (the whole fleet): looking at n1 (by ",
		"rebootmgr: unlocked on n1 (group default): released in phase rebooting by ",
		"rebootmgr: resumed (the whole fleet): by ",
	}
	if len(got) != len(want) {
		t.Fatalf("told %d times, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("told\n%q\nwant it to start\n%q", got[i], want[i])
		}
	}
	l := stored(t, n, n.keys().GroupHistory("default"), history.Decode)
	var outcomes []string
	for _, e := range l.Entries {
		outcomes = append(outcomes, e.Outcome)
	}
	if strings.Join(outcomes, ",") != history.NotRebooted+","+history.Unlocked {
		t.Errorf("history: %v, want one %q, then %q", outcomes, history.NotRebooted, history.Unlocked)
	}
}
