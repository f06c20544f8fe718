package web_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

var screenshot = flag.Bool("screenshot", false, "write docs/web.png, the page during a roll")

// browser is a headless Chromium (Debian's chromium; CHROMIUM_BIN names another), for the
// test's life; the test fails without one: scripts/test installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("CHROMIUM_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("no chromium to test the page in: run the tests with scripts/test, which installs Debian's chromium, or set CHROMIUM_BIN")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The page's script throws nothing, whatever it applies.
	var mu sync.Mutex
	var thrown []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*cdpruntime.EventExceptionThrown); ok {
			mu.Lock()
			defer mu.Unlock()
			thrown = append(thrown, e.ExceptionDetails.Error())
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(thrown) > 0 {
			t.Errorf("the page's script threw: %s", strings.Join(thrown, "; "))
		}
	})
	return ctx
}

// put writes a key of agent's.
func put(t *testing.T, agent *consultest.Agent, key string, value []byte) {
	t.Helper()
	if _, err := agent.Client.KV().Put(&api.KVPair{Key: key, Value: value}, nil); err != nil {
		t.Fatal(err)
	}
}

// rollUnderWay writes a roll of the default group under way: reboots that finished and one that
// failed in its history, and requests of nodes that wait.
func rollUnderWay(t *testing.T, agent *consultest.Agent, now time.Time) {
	t.Helper()
	keys := store.Keys{Prefix: store.DefaultPrefix}
	l := history.Log{Version: 1}
	for i, n := range []string{"db-1", "db-2", "db-3", "web-1", "web-2"} {
		start := now.Add(time.Duration(i-6) * 8 * time.Minute)
		outcome := history.Finished
		if n == "db-3" {
			outcome = history.TaskFailed
		}
		l = l.Append(history.Entry{Node: n, Start: start, End: start.Add(6 * time.Minute), Outcome: outcome, TriggeredBy: "key reboot_required"})
	}
	data, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	put(t, agent, keys.GroupHistory(lock.DefaultGroup), data)
	for _, n := range []string{"web-3", "web-4", "cache-1"} {
		put(t, agent, keys.RebootRequired(n), []byte("kernel 6.1.0-28"))
	}
}

// TestBrowser: in a real browser, the page shows the roll as it happens: a node's phase on the
// page changes within a second of its change in Consul, and the timeline draws it.
func TestBrowser(t *testing.T) {
	agent := consultest.Dev(t, "n1")
	now := time.Now()
	rollUnderWay(t, agent, now)
	v := serve(t, agent)
	ctx := browser(t)
	phase := `document.querySelector('#node-n1 .phase') && document.querySelector('#node-n1 .phase').textContent`
	var got string
	if err := chromedp.Run(ctx, chromedp.Navigate(v.url+"/"), chromedp.WaitVisible("#node-n1"), chromedp.Evaluate(phase, &got)); err != nil {
		t.Fatal(err)
	}
	if got != "-" {
		t.Fatalf("n1's phase on the page: %q", got)
	}
	for _, p := range []lock.Phase{lock.Preparing, lock.Rebooting} {
		Hold(t, agent, "n1", p, now.Add(-2*time.Minute))
		written := time.Now()
		wait, cancel := context.WithTimeout(ctx, time.Second)
		err := chromedp.Run(wait, chromedp.Poll(phase+` === '`+string(p)+`'`, nil, chromedp.WithPollingInterval(10*time.Millisecond)))
		cancel()
		if err != nil {
			t.Fatalf("n1's phase on the page is not %s within a second of its write (%s): %v", p, time.Since(written), err)
		}
		t.Logf("n1 %s on the page %s after its write", p, time.Since(written).Round(time.Millisecond))
	}
	var bars, failed int
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelectorAll('#timeline-svg rect.phase-rebooting').length`, &bars),
		chromedp.Evaluate(`document.querySelectorAll('#timeline-svg rect.failed').length`, &failed)); err != nil {
		t.Fatal(err)
	}
	if bars != 1 || failed != 1 {
		t.Fatalf("the timeline draws %d rebooting bars and %d failed reboots, want 1 and 1", bars, failed)
	}
	if *screenshot {
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "web.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
