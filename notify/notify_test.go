package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// receiver is a webhook that answers its calls as answer says (call counts from 1), and keeps
// what it was sent.
type receiver struct {
	answer func(call int, w http.ResponseWriter, r *http.Request)

	mu    sync.Mutex
	calls int
	got   []*http.Request
	body  [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.calls++
	call := rc.calls
	rc.got, rc.body = append(rc.got, r), append(rc.body, body)
	rc.mu.Unlock()
	rc.answer(call, w, r)
}

// answers answers each call with the next status, the last one for every call after.
func answers(statuses ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(call int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(statuses[min(call, len(statuses))-1])
	}
}

// TestWebhook: what a notification sends, and that a receiver that is slow, fails, refuses,
// hangs or is not there costs at most the notification's timeout, is retried while that may
// help, and is only logged.
func TestWebhook(t *testing.T) {
	slow := func(call int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond): // the receiver's own slowness
		case <-r.Context().Done():
		}
	}
	hang := func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	tests := []struct {
		name    string
		answer  func(int, http.ResponseWriter, *http.Request)
		down    bool // nothing listens at the URL
		timeout time.Duration
		// calls is how many calls the receiver gets (at least, with more); delivered, whether
		// the last was answered with success.
		calls     int
		more      bool
		delivered bool
	}{
		{"answers", answers(http.StatusNoContent), false, 5 * time.Second, 1, false, true},
		{"answers slowly", slow, false, 5 * time.Second, 1, false, true},
		{"fails, then answers", answers(http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusOK), false, 5 * time.Second, 3, false, true},
		{"too many requests, then answers", answers(http.StatusTooManyRequests, http.StatusOK), false, 5 * time.Second, 2, false, true},
		{"refuses: not tried again", answers(http.StatusBadRequest), false, 5 * time.Second, 1, false, false},
		{"not found: not tried again", answers(http.StatusNotFound), false, 5 * time.Second, 1, false, false},
		{"fails every time", answers(http.StatusInternalServerError), false, time.Second, 2, true, false},
		{"hangs", hang, false, 500 * time.Millisecond, 1, false, false},
		{"not there", nil, true, 500 * time.Millisecond, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{answer: tt.answer}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			url := srv.URL + "/hook"
			if tt.down {
				url = "http://" + closedAddr(t) + "/hook"
			}
			log := &fleettest.Log{}
			n := Notifier{Node: "n1", Group: "db", URL: url, Timeout: tt.timeout, Logger: slog.New(slog.NewTextHandler(log, nil))}
			// The run's context ending does not cut the notification short.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			began := time.Now()
			n.Tell(ctx, "reboot started", "key reboot_required")
			if took := time.Since(began); took > tt.timeout+2*time.Second {
				t.Fatalf("the notification took %s, its timeout %s", took, tt.timeout)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if rc.calls != tt.calls && !(tt.more && rc.calls > tt.calls) {
				t.Fatalf("%d calls, want %d", rc.calls, tt.calls)
			}
			for i, r := range rc.got {
				checkSent(t, r, rc.body[i])
			}
			if warned := log.Count("could not notify the webhook"); warned != map[bool]int{true: 0, false: 1}[tt.delivered] {
				t.Fatalf("warned %d times, delivered %v:\n%s", warned, tt.delivered, log)
			}
		})
	}
}

// checkSent checks a notification as the webhook receives it.
func checkSent(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/hook" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("sent %s %s as %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	var m Message
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if m.Kind != "reboot started" || m.Node != "n1" || m.Group != "db" || m.Reason != "key reboot_required" || time.Since(m.Time) > time.Minute {
		t.Fatalf("sent %+v", m)
	}
	if m.Time.Location() != time.UTC {
		t.Fatalf("time %v not in UTC", m.Time)
	}
}

// closedAddr is a loopback address nothing listens at.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestConsulEvent: a notification fires a Consul user event named rebootmgr whose payload is
// the message, its reason cut to keep the payload within Consul's bound; a Consul that is not
// there costs at most the timeout, and is only logged.
func TestConsulEvent(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	long := strings.Repeat("the pre-boot task 10-drain failed: ", 40)
	tests := []struct {
		name, reason string
		cut          bool
		// node and group name the node ("n1" in "db" when empty).
		node, group string
	}{
		{"a reason", "key reboot_required", false, "", ""},
		{"no reason", "", false, "", ""},
		{"a reason that fits", long[:200], false, "", ""},
		{"a long reason, cut", long, true, "", ""},
		{"a long reason of markup and quotes, cut", strings.Repeat(`<p class="x">&</p>`, 40), true, "", ""},
		{"a long reason of quotes and newlines, cut", strings.Repeat("\"a\"\n", 100), true, "", ""},
		{"a long reason in characters of 3 bytes, cut at one", strings.Repeat("€", 200), true, "", ""},
		{"a long reason, and the longest names", long, true, strings.Repeat("n", 63), strings.Repeat("g", 63)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.node == "" {
				tt.node, tt.group = "n1", "db"
			}
			log := &fleettest.Log{}
			n := Notifier{Node: tt.node, Group: tt.group, Client: agent.Client, Logger: slog.New(slog.NewTextHandler(log, nil))}
			kind := fmt.Sprintf("reboot started %d", i)
			n.Tell(context.Background(), kind, tt.reason)
			if log.Count("could not fire") != 0 {
				t.Fatalf("the event was not fired:\n%s", log)
			}
			ev := eventOf(t, agent.Client, kind)
			if len(ev.Payload) > maxEventPayload {
				t.Fatalf("payload of %d bytes, want %d at most", len(ev.Payload), maxEventPayload)
			}
			var m Message
			if err := json.Unmarshal(ev.Payload, &m); err != nil {
				t.Fatalf("payload %s: %v", ev.Payload, err)
			}
			if m.Node != tt.node || m.Group != tt.group || m.Time.IsZero() {
				t.Fatalf("fired %+v", m)
			}
			kept, cut := strings.CutSuffix(m.Reason, "...")
			switch {
			case !tt.cut && m.Reason != tt.reason:
				t.Fatalf("reason %q, want it whole", m.Reason)
			case tt.cut && (!cut || !strings.HasPrefix(tt.reason, kept) || len(kept) < 40):
				t.Fatalf("reason %q, want a beginning of %q and ...", m.Reason, tt.reason)
			case !utf8.ValidString(m.Reason) || strings.ContainsRune(m.Reason, utf8.RuneError):
				t.Fatalf("reason %q cut inside a character", m.Reason)
			}
		})
	}
	// A server notices a client gone only once it has read the request's body.
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hanging.Close()
	for _, tt := range []struct{ name, addr string }{
		{"Consul not there", closedAddr(t)},
		{"Consul hangs", strings.TrimPrefix(hanging.URL, "http://")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, err := api.NewClient(&api.Config{Address: tt.addr})
			if err != nil {
				t.Fatal(err)
			}
			log := &fleettest.Log{}
			n := Notifier{Node: "n1", Client: client, Timeout: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(log, nil))}
			began := time.Now()
			n.Tell(context.Background(), "reboot started", "")
			if took := time.Since(began); took > 3*time.Second {
				t.Fatalf("the notification took %s, its timeout 500ms", took)
			}
			if log.Count("could not fire the consul event") != 1 {
				t.Fatalf("not logged:\n%s", log)
			}
		})
	}
}

// eventOf waits for the agent to hold the event named EventName of kind, by blocking queries.
func eventOf(t *testing.T, client *api.Client, kind string) *api.UserEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var index uint64
	for time.Now().Before(deadline) {
		evs, meta, err := client.Event().List(EventName, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			var m Message
			if json.Unmarshal(ev.Payload, &m) == nil && m.Kind == kind {
				return ev
			}
		}
		index = meta.LastIndex
	}
	t.Fatalf("no event of kind %q", kind)
	return nil
}
