package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

// TestFleetLockNeedsAuthOrInsecure: without a token file the server does not start (exit 64,
// saying what to give) unless told --insecure-no-auth, which it warns of at start; both at
// once make no sense.
func TestFleetLockNeedsAuthOrInsecure(t *testing.T) {
	n := dev(t)
	tokens := filepath.Join(n.dir, "tokens")
	writeFile(t, tokens, "*=s3cret\n")
	for _, tt := range []struct {
		name    string
		environ map[string]string
		args    []string
		says    []string
	}{
		{"neither", nil, []string{"--listen", "127.0.0.1:0"}, []string{"--token-file", "--insecure-no-auth"}},
		{"neither, from the environment", map[string]string{"REBOOTMGR_LISTEN": "127.0.0.1:0"}, nil, []string{"--insecure-no-auth"}},
		{"both", nil, []string{"--listen", "127.0.0.1:0", "--token-file", tokens, "--insecure-no-auth"}, []string{"exclude each other"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A server that starts anyway serves until the time is up.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			n.expect(n.runWith(ctx, tt.environ, &fleettest.Log{}, "fleetlock", tt.args...), exitUsage, tt.says...)
		})
	}
	f := n.startFleetlock(map[string]string{"REBOOTMGR_INSECURE_NO_AUTH": "true"})
	fleettest.WaitSeen(t, f.log.Seen("level=WARN msg=\"no authentication (--insecure-no-auth)"), "the warning at start")
	if code, r := f.zincati(t, "pre-reboot", "host-1", "default"); code != 200 {
		t.Fatalf("pre-reboot without a token, --insecure-no-auth given: %d %+v", code, r)
	}
}
