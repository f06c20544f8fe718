package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/alerttest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
)

var viewAt = regexp.MustCompile(`msg="serving the live view, read-only".* addr=(\S+)`)

// startWeb starts `rebootmgr web` on n's agent, listening on a free port, and returns the page's
// URL once it serves.
func (n *testNode) startWeb(extra ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &fleettest.Log{}
	done := make(chan result, 1)
	go func() {
		done <- n.runWith(ctx, nil, log, "web", append([]string{"--listen", "127.0.0.1:0"}, extra...)...)
	}()
	n.t.Cleanup(func() {
		cancel()
		if r := <-done; r.code != 0 {
			n.t.Errorf("rebootmgr web: %s", r)
		}
	})
	select {
	case <-log.Seen("serving the live view"):
	case r := <-done:
		n.t.Fatalf("rebootmgr web ended before serving: %s", r)
	case <-time.After(20 * time.Second):
		n.t.Fatal("rebootmgr web never served")
	}
	m := viewAt.FindStringSubmatch(log.String())
	if m == nil {
		n.t.Fatalf("no address in the log:\n%s", log)
	}
	return strings.Trim(m[1], `"`)
}

var (
	gateCell = regexp.MustCompile(`(?s)<td class="gate"><b>([^<]*)</b>(.*?)</td>`)
	listItem = regexp.MustCompile(`(?s)<li>(.*?)</li>`)
)

// gateOnPage is the gate that holds node back on the page at url, and the evidence its row
// shows, as text ("" when its row shows no gate).
func gateOnPage(t *testing.T, url, node string) (string, []string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	i := strings.Index(page, `<tr id="node-`+node+`"`)
	if i < 0 {
		return "", nil
	}
	row, _, _ := strings.Cut(page[i:], "</tr>")
	m := gateCell.FindStringSubmatch(row)
	if m == nil {
		return "", nil
	}
	var ev []string
	for _, li := range listItem.FindAllStringSubmatch(m[2], -1) {
		ev = append(ev, html.UnescapeString(li[1]))
	}
	return html.UnescapeString(m[1]), ev
}

// failing is the gate check's output says fails first, and its evidence, a line each.
func failing(out string) (string, []string) {
	var gate string
	var ev []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case gate == "" && len(line) > 15 && line[10:16] == "FAIL  ":
			gate, ev = strings.TrimSpace(line[:9]), []string{line[16:]}
		case gate != "" && strings.HasPrefix(line, strings.Repeat(" ", 16)):
			ev = append(ev, line[16:])
		case gate != "":
			return gate, ev
		}
	}
	return gate, ev
}

// TestWebShowsCheckEvidence: the row of a node held back shows the gate that holds it with the
// very evidence rebootmgr check prints for that gate: the failing instances and the rule for
// health, the holders and the place in the queue for the lock, the firing alerts for alerts.
func TestWebShowsCheckEvidence(t *testing.T) {
	for _, tc := range []struct {
		name, gate string
		set        func(t *testing.T, n *testNode) []string
		says       string
	}{
		{"health", "health", func(t *testing.T, n *testNode) []string {
			n.agent.RegisterService("galera", []string{"rebootmgr", "min_passing=2"}, "passing")
			n.agent.RegisterRemote("n2", "galera", []string{"rebootmgr", "min_passing=2"}, "critical")
			return nil
		}, `n2: check "service:galera" critical`},
		{"lock held", "lock", func(t *testing.T, n *testNode) []string {
			putHolder(t, n, lock.Holder{Node: "n2", Phase: lock.Rebooting, Since: time.Now(), RebootStarted: time.Now()})
			return nil
		}, "n2"},
		{"a place in the queue", "lock", func(t *testing.T, n *testNode) []string {
			n.put(n.keys().GroupLimit(lock.DefaultGroup), "2")
			putHolder(t, n, lock.Holder{Node: "n2", Phase: lock.Rebooting, Since: time.Now(), RebootStarted: time.Now()})
			q := lock.Queue{}.Join("n3", time.Now().Add(-time.Second)).Join(n.agent.Node, time.Now())
			data, err := q.Encode()
			if err != nil {
				t.Fatal(err)
			}
			n.put(n.keys().GroupQueue(lock.DefaultGroup), string(data))
			return nil
		}, "place 2"},
		{"alerts", "alerts", func(t *testing.T, n *testNode) []string {
			prom := alerttest.Prometheus(t, alerttest.Rule{Alert: "DiskFull", Expr: "vector(1)", Labels: map[string]string{"severity": "critical"}})
			return []string{"--alerts-url", prom}
		}, `DiskFull{severity="critical"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := dev(t)
			n.put(n.keys().RebootRequired(n.agent.Node), "kernel")
			flags := tc.set(t, n)
			r := n.run("check", flags...)
			gate, want := failing(r.stdout)
			if gate != tc.gate || !strings.Contains(strings.Join(want, "\n"), tc.says) {
				t.Fatalf("check fails at %q with %q, want %s saying %q: %s", gate, want, tc.gate, tc.says, r)
			}
			url := n.startWeb(flags...)
			deadline := time.Now().Add(20 * time.Second)
			for {
				shown, got := gateOnPage(t, url, n.agent.Node)
				if shown == gate && slices.Equal(got, want) {
					t.Logf("%s on the page: %s", gate, strings.Join(got, " | "))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the page shows %q with %q, check %q with %q", shown, got, gate, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
