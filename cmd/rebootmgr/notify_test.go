package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

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
