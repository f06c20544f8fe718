package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
)

// A Format is how a service takes a notification: the request's body, made of the message and
// its text (the template's), and how to read the service's answer.
type Format struct {
	Name string
	// About says what the URL is, for the help and the documentation.
	About string
	// body is the request's body and content type.
	body func(u *url.URL, m Message, text string) ([]byte, string, error)
	// escape is applied to each of the message's texts before the template sees it.
	escape func(string) string
	// maxText bounds the text, in bytes, as the service bounds it.
	maxText int
	// check, when set, judges an answer of status 2xx by its body.
	check func(body []byte) error
	// url, when set, checks what the service needs in the URL.
	url func(u *url.URL) error
}

// JSON is the format every release has sent: the Message as JSON, its shape kept as it is.
const JSON = "json"

// Formats are the formats a notification can be sent in.
func Formats() []Format {
	text := func(key string) func(*url.URL, Message, string) ([]byte, string, error) {
		return func(_ *url.URL, _ Message, t string) ([]byte, string, error) {
			return jsonBody(map[string]string{key: t})
		}
	}
	return []Format{
		{Name: JSON, About: `any URL: {"kind", "node", "group", "reason", "time"} as JSON (the template is not used)`,
			body: func(_ *url.URL, m Message, _ string) ([]byte, string, error) {
				body, err := json.Marshal(m)
				return body, "application/json", err
			}},
		{Name: "slack", About: "a Slack incoming webhook (https://hooks.slack.com/services/...)",
			body: text("text"), escape: slackEscape, maxText: 3000},
		{Name: "mattermost", About: "a Mattermost (or Rocket.Chat) incoming webhook (https://HOST/hooks/...)",
			body: text("text"), maxText: 4000},
		{Name: "teams", About: "a Microsoft Teams workflow webhook (Post to a channel when a webhook request is received): an Adaptive Card",
			body: teamsBody, maxText: 4000},
		{Name: "discord", About: "a Discord webhook (https://discord.com/api/webhooks/ID/TOKEN); mentions in a text never ping",
			body: discordBody, maxText: 2000},
		{Name: "googlechat", About: "a Google Chat space webhook (https://chat.googleapis.com/v1/spaces/.../messages?key=...&token=...)",
			body: text("text"), maxText: 4000},
		{Name: "telegram", About: "the Telegram Bot API's sendMessage with the chat in the URL (https://api.telegram.org/botTOKEN/sendMessage?chat_id=CHAT)",
			body: telegramBody, maxText: 4096, check: telegramAnswer, url: telegramURL},
		{Name: "ntfy", About: "an ntfy topic (https://ntfy.sh/TOPIC): the text as the body, the kind as the title",
			body: func(_ *url.URL, _ Message, t string) ([]byte, string, error) {
				return []byte(t), "text/plain; charset=utf-8", nil
			}, maxText: 4000},
	}
}

// FormatNames are the names of the formats, as --notify-format takes them.
func FormatNames() []string {
	var out []string
	for _, f := range Formats() {
		out = append(out, f.Name)
	}
	return out
}

// ParseFormat is the format named name ("" is JSON), checked against the URL it is sent to
// (none: "").
func ParseFormat(name, rawURL string) (Format, error) {
	if name == "" {
		name = JSON
	}
	i := slices.IndexFunc(Formats(), func(f Format) bool { return f.Name == name })
	if i < 0 {
		return Format{}, fmt.Errorf("unknown format %q: want one of %s", name, strings.Join(FormatNames(), ", "))
	}
	f := Formats()[i]
	if rawURL == "" || f.url == nil {
		return f, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return Format{}, err
	}
	return f, f.url(u)
}

func jsonBody(v any) ([]byte, string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// A text is shown as it is written: <, > and & are no HTML here.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, "", err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), "application/json", nil
}

// slackEscape escapes what Slack reads as markup in a text: &, < and >.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func teamsBody(_ *url.URL, _ Message, text string) ([]byte, string, error) {
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    []any{map[string]any{"type": "TextBlock", "text": text, "wrap": true}},
	}
	return jsonBody(map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	})
}

func discordBody(_ *url.URL, _ Message, text string) ([]byte, string, error) {
	return jsonBody(map[string]any{"content": text, "allowed_mentions": map[string]any{"parse": []string{}}})
}

func telegramBody(u *url.URL, _ Message, text string) ([]byte, string, error) {
	return jsonBody(map[string]any{"chat_id": u.Query().Get("chat_id"), "text": text})
}

// telegramURL requires the chat the bot writes to.
func telegramURL(u *url.URL) error {
	if u.Query().Get("chat_id") == "" {
		return errors.New("the telegram format needs the chat in the URL: https://api.telegram.org/botTOKEN/sendMessage?chat_id=CHAT")
	}
	return nil
}

// telegramAnswer reads the Bot API's answer: {"ok": false, "description": ...} is a refusal.
func telegramAnswer(body []byte) error {
	var a struct {
		OK          bool   `json:"ok"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("telegram answered something other than its JSON: %w", err)
	}
	if !a.OK {
		return fmt.Errorf("telegram refused the message: %s", a.Description)
	}
	return nil
}

// DefaultTemplate is the text of a notification, unless one is given.
const DefaultTemplate = `rebootmgr: {{.Kind}}{{with .Node}} on {{.}}{{end}}{{with .Group}} (group {{.}}){{else}}{{if not .Node}} (the whole fleet){{end}}{{end}}{{with .Reason}}: {{.}}{{end}}`

// ParseTemplate parses a notification's text template (text/template, over a Message: .Kind,
// .Node, .Group, .Reason, .Time), and tries it on a message, so that a template that names
// what a Message lacks is an error now rather than at a reboot.
func ParseTemplate(text string) (*template.Template, error) {
	t, err := template.New("notification").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if _, err := render(t, Message{Kind: "reboot started", Node: "n1", Group: "default", Reason: "requested by key"}, nil, 0); err != nil {
		return nil, err
	}
	return t, nil
}

// render is the text of m by t, its texts escaped first, cut to max bytes (0: no bound).
func render(t *template.Template, m Message, escape func(string) string, max int) (string, error) {
	if escape != nil {
		m.Kind, m.Node, m.Group, m.Reason = escape(m.Kind), escape(m.Node), escape(m.Group), escape(m.Reason)
	}
	var buf strings.Builder
	if err := t.Execute(&buf, m); err != nil {
		return "", err
	}
	s := buf.String()
	if max > 0 && len(s) > max {
		s = cutAt(s, max-len("..."))
	}
	return s, nil
}
