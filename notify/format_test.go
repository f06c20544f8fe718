package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// service is a local receiver shaped like a chat service's webhook: it takes what the service
// takes (its path, content type and JSON, decoded strictly), refuses the rest as the service
// does, answers as it answers, and gives the test the text it would show.
type service struct {
	path string
	// text is the text the service shows, read from the request; an error is what the
	// service answers a request it refuses with (400, its error body).
	text func(r *http.Request, body []byte) (string, error)
	// ok is the service's answer to a request it took.
	ok func(w http.ResponseWriter)
}

// strict decodes body into v, refusing any field v does not name.
func strict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func jsonRequest(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("content type %q", ct)
	}
	return nil
}

// services are receivers shaped like each chat format's service (what its API documents).
func services() map[string]service {
	plainOK := func(w http.ResponseWriter) { io.WriteString(w, "ok") }
	textField := func(r *http.Request, body []byte) (string, error) {
		var m struct {
			Text *string `json:"text"`
		}
		if err := jsonRequest(r); err != nil {
			return "", err
		}
		if err := strict(body, &m); err != nil || m.Text == nil {
			return "", fmt.Errorf("invalid_payload: %v", err)
		}
		return *m.Text, nil
	}
	return map[string]service{
		"slack":      {path: "/services/T000/B000/XXXX", text: textField, ok: plainOK},
		"mattermost": {path: "/hooks/xyzzy", text: textField, ok: plainOK},
		"googlechat": {path: "/v1/spaces/AAAA/messages", text: textField, ok: func(w http.ResponseWriter) {
			io.WriteString(w, `{"name":"spaces/AAAA/messages/1","text":"..."}`)
		}},
		"teams": {path: "/workflows/abc/triggers/manual/paths/invoke", text: teamsText, ok: func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }},
		"discord": {path: "/api/webhooks/1234/token", text: func(r *http.Request, body []byte) (string, error) {
			var m struct {
				Content         string `json:"content"`
				AllowedMentions struct {
					Parse []string `json:"parse"`
				} `json:"allowed_mentions"`
			}
			if err := jsonRequest(r); err != nil {
				return "", err
			}
			if err := strict(body, &m); err != nil {
				return "", err
			}
			if m.AllowedMentions.Parse == nil || len(m.AllowedMentions.Parse) > 0 {
				return "", fmt.Errorf("mentions would ping: %s", body)
			}
			if n := utf8.RuneCountInString(m.Content); n > 2000 || n == 0 {
				return "", fmt.Errorf(`{"content": ["Must be 2000 or fewer in length."]} (%d)`, n)
			}
			return m.Content, nil
		}, ok: func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }},
		"telegram": {path: "/botTOKEN/sendMessage", text: func(r *http.Request, body []byte) (string, error) {
			var m struct {
				ChatID string `json:"chat_id"`
				Text   string `json:"text"`
			}
			if err := jsonRequest(r); err != nil {
				return "", err
			}
			if err := strict(body, &m); err != nil {
				return "", err
			}
			if m.ChatID != "-1001" {
				return "", fmt.Errorf(`{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
			}
			if n := utf8.RuneCountInString(m.Text); n > 4096 {
				return "", fmt.Errorf(`{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}`)
			}
			return m.Text, nil
		}, ok: func(w http.ResponseWriter) { io.WriteString(w, `{"ok":true,"result":{"message_id":1}}`) }},
		"ntfy": {path: "/rebootmgr-alerts", text: func(r *http.Request, body []byte) (string, error) {
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") || !strings.HasPrefix(r.Header.Get("Title"), "rebootmgr: ") {
				return "", fmt.Errorf("content type %q, title %q", r.Header.Get("Content-Type"), r.Header.Get("Title"))
			}
			return string(body), nil
		}, ok: func(w http.ResponseWriter) { io.WriteString(w, `{"id":"x","event":"message"}`) }},
	}
}

// teamsText is the text of an Adaptive Card posted to a Teams workflow.
func teamsText(r *http.Request, body []byte) (string, error) {
	var m struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string  `json:"contentType"`
			ContentURL  *string `json:"contentUrl"`
			Content     struct {
				Schema  string `json:"$schema"`
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type string `json:"type"`
					Text string `json:"text"`
					Wrap bool   `json:"wrap"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := jsonRequest(r); err != nil {
		return "", err
	}
	if err := strict(body, &m); err != nil {
		return "", err
	}
	if m.Type != "message" || len(m.Attachments) != 1 {
		return "", fmt.Errorf("not a message with one attachment: %s", body)
	}
	a := m.Attachments[0]
	if a.ContentType != "application/vnd.microsoft.card.adaptive" || a.Content.Type != "AdaptiveCard" || a.Content.Version == "" || len(a.Content.Body) != 1 || a.Content.Body[0].Type != "TextBlock" {
		return "", fmt.Errorf("not an Adaptive Card with a text block: %s", body)
	}
	return a.Content.Body[0].Text, nil
}

// serve is a server for s; texts receives the text of each request it took.
func (s service) serve(t *testing.T) (*httptest.Server, chan string) {
	texts := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != s.path {
			http.Error(w, "no such webhook", http.StatusNotFound)
			return
		}
		text, err := s.text(r, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		texts <- text
		s.ok(w)
	}))
	t.Cleanup(srv.Close)
	return srv, texts
}

// TestFormats: each chat format, sent to a receiver shaped like its service, is taken, and the
// service shows the template's text: escaped where the service reads markup, cut where it
// bounds the length.
func TestFormats(t *testing.T) {
	long := strings.Repeat("é", 3000)
	custom := `{{.Node}} {{.Kind}}{{if eq .Kind "task failed"}} <!here>{{end}}: {{.Reason}}`
	for _, tc := range []struct {
		format, template, query string
		m                       Message
		want                    string
	}{
		{"slack", "", "", Message{Kind: "reboot started", Node: "n1", Group: "db", Reason: "requested by key <b> & co"},
			"rebootmgr: reboot started on n1 (group db): requested by key &lt;b&gt; &amp; co"},
		{"slack", custom, "", Message{Kind: "task failed", Node: "n1", Reason: "a<b"}, "n1 task failed <!here>: a&lt;b"},
		{"mattermost", "", "", Message{Kind: "stopped", Reason: "upgrade (by ann on h1)"}, "rebootmgr: stopped (the whole fleet): upgrade (by ann on h1)"},
		{"teams", "", "", Message{Kind: "unlocked", Node: "n3", Group: "default", Reason: "a & b"}, "rebootmgr: unlocked on n3 (group default): a & b"},
		{"googlechat", "", "", Message{Kind: "resumed", Group: "compute"}, "rebootmgr: resumed (group compute)"},
		{"discord", "", "", Message{Kind: "reboot finished", Node: "n1", Group: "db", Reason: "@everyone"}, "rebootmgr: reboot finished on n1 (group db): @everyone"},
		{"discord", "{{.Reason}}", "", Message{Kind: "task failed", Reason: long}, strings.Repeat("é", 998) + "..."},
		{"telegram", "", "?chat_id=-1001", Message{Kind: "did not reboot", Node: "n2", Group: "db", Reason: "boot id unchanged"}, "rebootmgr: did not reboot on n2 (group db): boot id unchanged"},
		{"ntfy", "", "", Message{Kind: "reboot started", Node: "n1", Group: "db"}, "rebootmgr: reboot started on n1 (group db)"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			s := services()[tc.format]
			srv, texts := s.serve(t)
			f, err := ParseFormat(tc.format, srv.URL+s.path+tc.query)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := DefaultTemplate
			if tc.template != "" {
				tmpl = tc.template
			}
			tt, err := ParseTemplate(tmpl)
			if err != nil {
				t.Fatal(err)
			}
			log := &fleettest.Log{}
			n := Notifier{URL: srv.URL + s.path + tc.query, Format: f, Template: tt, Logger: slog.New(slog.NewTextHandler(log, nil))}
			n.Notify(context.Background(), tc.m)
			select {
			case got := <-texts:
				if got != tc.want {
					t.Errorf("the service shows\n%q\nwant\n%q", got, tc.want)
				}
			default:
				t.Fatalf("the service took nothing:\n%s", log)
			}
			if log.Count("could not notify") > 0 {
				t.Errorf("a notification the service took was logged as failed:\n%s", log)
			}
		})
	}
}

// TestFormatRefused: a service that refuses a notification is not asked again, and its own
// words are in the warning.
func TestFormatRefused(t *testing.T) {
	s := services()["telegram"]
	srv, texts := s.serve(t)
	url := srv.URL + s.path + "?chat_id=42"
	f, err := ParseFormat("telegram", url)
	if err != nil {
		t.Fatal(err)
	}
	log := &fleettest.Log{}
	n := Notifier{URL: url, Format: f, Timeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(log, nil))}
	n.Tell(context.Background(), "reboot started", "")
	if len(texts) != 0 || log.Count("chat not found") != 1 {
		t.Fatalf("a refused notification: %d taken, log:\n%s", len(texts), log)
	}
}

// TestTelegramAnswer: an answer of 200 whose {"ok": false} says the Bot API refused.
func TestTelegramAnswer(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"ok":true,"result":{}}`: true,
		`{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`: false,
		`<html>`: false,
	} {
		if err := telegramAnswer([]byte(body)); (err == nil) != ok {
			t.Errorf("answer %s: %v", body, err)
		}
	}
}

// TestParseFormatAndTemplate: what --notify-format and --notify-template refuse.
func TestParseFormatAndTemplate(t *testing.T) {
	for _, tc := range []struct{ format, url, want string }{
		{"", "https://x/hook", ""},
		{"json", "https://x/hook", ""},
		{"slack", "https://hooks.slack.com/services/a", ""},
		{"telegram", "https://api.telegram.org/botT/sendMessage?chat_id=1", ""},
		{"telegram", "https://api.telegram.org/botT/sendMessage", "needs the chat"},
		{"matrix", "https://x/hook", "unknown format"},
	} {
		_, err := ParseFormat(tc.format, tc.url)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFormat(%q, %q): %v, want %q", tc.format, tc.url, err, tc.want)
		}
	}
	for tmpl, ok := range map[string]bool{
		DefaultTemplate:              true,
		"{{.Node}}: {{.Time.Year}}":  true,
		"{{.Host}}":                  false,
		"{{.Node":                    false,
		`{{if eq .Kind "x"}}{{end}}`: true,
		`{{template "nothing" .}}`:   false,
		`{{.Node}}: {{.Kind}}{{if eq .Kind "task failed" "did not reboot"}} <!here>{{end}} {{.Reason}}`: true,
	} {
		if _, err := ParseTemplate(tmpl); (err == nil) != ok {
			t.Errorf("ParseTemplate(%q): %v", tmpl, err)
		}
	}
}
