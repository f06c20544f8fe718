package main

import (
	"os"
	"strings"
	"testing"
)

// TestManPage: deploy/rebootmgr.8 is what `rebootmgr man` prints, and names every command and
// flag. After changing the help: go run ./cmd/rebootmgr man > deploy/rebootmgr.8
func TestManPage(t *testing.T) {
	var out strings.Builder
	if code := run(t.Context(), []string{"man"}, env{lookup: func(string) (string, bool) { return "", false }}, &out, &strings.Builder{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	page := out.String()
	for _, want := range []string{".TH REBOOTMGR 8", ".SS daemon", ".SS unlock", "-reboot-window", "-stay-green", "-notify-url", ".B 102", ".SH FILES", DefaultConfigFile, ".SH ENVIRONMENT", "REBOOTMGR_CONFIG", "CONSUL_HTTP_TOKEN"} {
		if !strings.Contains(page, want) {
			t.Errorf("the man page lacks %q", want)
		}
	}
	shipped, err := os.ReadFile("../../deploy/rebootmgr.8")
	if err != nil {
		t.Fatal(err)
	}
	if string(shipped) != page {
		t.Fatal("deploy/rebootmgr.8 is out of date: go run ./cmd/rebootmgr man > deploy/rebootmgr.8")
	}
}
