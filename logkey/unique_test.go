package logkey

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/strictjson"
)

// TestUnique: whatever a logger and its line repeat, the JSON line names each key once, with
// the value given last.
func TestUnique(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"a component given again",
			func(l *slog.Logger) {
				l.With(Component, "pipeline", Node, "n1").With(Component, "tasks").Info("task started", Task, "10-drain")
			},
			`{"level":"INFO","msg":"task started","component":"tasks","node":"n1","task":"10-drain"}`},
		{"the line's own over the logger's",
			func(l *slog.Logger) { l.With(Node, "n1").Info("x", Node, "n2", Node, "n3") },
			`{"level":"INFO","msg":"x","node":"n3"}`},
		{"a group's keys are its own",
			func(l *slog.Logger) {
				l.With(Node, "n1").WithGroup("g").With(Node, "n2").Info("x", Node, "n3")
			},
			`{"level":"INFO","msg":"x","node":"n1","g":{"node":"n3"}}`},
		{"nothing repeated",
			func(l *slog.Logger) { l.Info("x", Node, "n1", Group, "default") },
			`{"level":"INFO","msg":"x","node":"n1","group":"default"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			noTime := func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey && len(groups) == 0 {
					return slog.Attr{}
				}
				return a
			}
			tc.log(slog.New(Unique(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime}))))
			line := strings.TrimSuffix(buf.String(), "\n")
			if _, err := strictjson.Object([]byte(line)); err != nil {
				t.Errorf("%v: %s", err, line)
			}
			if line != tc.want {
				t.Errorf("got  %s\nwant %s", line, tc.want)
			}
		})
	}
}
