// Package notify tells the outside world what rebootmgr did: a Consul user event named
// "rebootmgr" and, optionally, a POST to a webhook: the message as JSON, or its text (a
// template's) in the shape a chat service takes (see Formats). Notifying is bounded in time and its
// failures are logged, never passed on: a notification never blocks or breaks a reboot.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// EventName is the name of the Consul user events rebootmgr fires.
const EventName = "rebootmgr"

// The kinds of notification an operator's command sends (the pipeline's are its own).
const (
	KindStopped  = "stopped"
	KindResumed  = "resumed"
	KindUnlocked = "unlocked"
)

// Message is one notification.
type Message struct {
	Kind   string    `json:"kind"`
	Node   string    `json:"node"`
	Group  string    `json:"group"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

// maxEventPayload bounds a Consul event's payload, as encoded. Consul's limit, 512 bytes,
// counts the event's own encoding too: an event named rebootmgr takes 398 bytes of payload at
// most, fewer as its Lamport time grows.
const maxEventPayload = 380

// Notifier sends messages about one node.
type Notifier struct {
	Node  string
	Group string
	// Client fires the Consul event (none when nil).
	Client *api.Client
	// URL receives a JSON POST ("" for none).
	URL  string
	HTTP *http.Client
	// Format is what the URL takes (JSON when its Name is "").
	Format Format
	// Template makes a message's text for a chat format (DefaultTemplate when nil).
	Template *template.Template
	// Timeout bounds one notification, retries included (5s when zero).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Tell sends a message of kind about the node.
func (n Notifier) Tell(ctx context.Context, kind, reason string) {
	n.Notify(ctx, Message{Kind: kind, Node: n.Node, Group: n.Group, Reason: reason})
}

// Notify sends m, within the timeout; failures are logged.
func (n Notifier) Notify(ctx context.Context, m Message) {
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if m.Time.IsZero() {
		m.Time = time.Now().UTC()
	}
	if n.Client != nil {
		if err := n.event(ctx, m); err != nil {
			n.Logger.Warn("could not fire the consul event", logkey.Kind, m.Kind, logkey.Err, err)
		}
	}
	if n.URL != "" {
		if err := n.post(ctx, m); err != nil {
			n.Logger.Warn("could not notify the webhook", logkey.Kind, m.Kind, logkey.URL, n.URL, logkey.Err, err)
		}
	}
}

func (n Notifier) event(ctx context.Context, m Message) error {
	payload, err := eventPayload(m)
	if err != nil {
		return err
	}
	w := (&api.WriteOptions{}).WithContext(ctx)
	_, _, err = n.Client.Event().Fire(&api.UserEvent{Name: EventName, Payload: payload}, w)
	return err
}

// eventPayload is m as a Consul event's payload: its reason cut at a character, and marked so
// with "...", as far as needed for the payload as encoded to fit maxEventPayload. The cut is
// judged on the encoded payload: JSON writes a quote in 2 bytes, and <, > and & in 6.
func eventPayload(m Message) ([]byte, error) {
	payload, err := json.Marshal(m)
	if err != nil || len(payload) <= maxEventPayload {
		return payload, err
	}
	// The longest beginning of the reason that fits, by halves: fits keeps lo, never hi.
	reason := m.Reason
	lo, hi := 0, len(reason)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		m.Reason = cutAt(reason, mid)
		if p, err := json.Marshal(m); err == nil && len(p) <= maxEventPayload {
			lo = mid
		} else {
			hi = mid
		}
	}
	m.Reason = cutAt(reason, lo)
	return json.Marshal(m)
}

// cutAt is the first n bytes of s, less the start of a character cut there, and "...".
func cutAt(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// request is the body and content type of m, as the URL's format takes it.
func (n Notifier) request(u *url.URL, m Message) ([]byte, string, error) {
	f := n.Format
	if f.Name == "" {
		f, _ = ParseFormat(JSON, "")
	}
	t := n.Template
	if t == nil {
		t = template.Must(ParseTemplate(DefaultTemplate))
	}
	text, err := render(t, m, f.escape, f.maxText)
	if err != nil {
		return nil, "", fmt.Errorf("the notification's template: %w", err)
	}
	return f.body(u, m, text)
}

func (n Notifier) post(ctx context.Context, m Message) error {
	u, err := url.Parse(n.URL)
	if err != nil {
		return err
	}
	body, contentType, err := n.request(u, m)
	if err != nil {
		return err
	}
	client := n.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxElapsedTime = 0
	return backoff.Retry(func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
		if err != nil {
			return backoff.Permanent(err)
		}
		req.Header.Set("Content-Type", contentType)
		if n.Format.Name == "ntfy" {
			req.Header.Set("Title", "rebootmgr: "+m.Kind)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		said := ""
		if a := clip.OneLine(string(answer)); a != "" {
			if len(a) > maxSaid {
				a = cutAt(a, maxSaid)
			}
			said = ": " + a
		}
		switch {
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("webhook answered %s%s", resp.Status, said)
		case resp.StatusCode >= 300:
			return backoff.Permanent(fmt.Errorf("webhook answered %s%s", resp.Status, said))
		case n.Format.check != nil:
			if err := n.Format.check(answer); err != nil {
				return backoff.Permanent(err)
			}
		}
		return nil
	}, backoff.WithContext(b, ctx))
}

// maxAnswer bounds what is read of a webhook's answer.
const maxAnswer = 4 << 10

// maxSaid bounds what a log line repeats of a webhook's answer.
const maxSaid = 200
