package watch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor bounds how long a test waits for the watch to see something; nothing passes time.
const waitFor = 10 * time.Second

// files runs a FileSource on real fsnotify in a temporary directory; paths are relative to it.
type files struct {
	t       *testing.T
	root    string
	paths   []string
	events  *Events
	pending []Event

	mu      sync.Mutex
	dirs    []string
	changed chan struct{}
}

func startFiles(t *testing.T, existing, paths []string) *files {
	t.Helper()
	h := &files{t: t, root: t.TempDir(), events: NewEvents(), changed: make(chan struct{}, 1)}
	for _, dir := range existing {
		if err := os.MkdirAll(h.path(dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range paths {
		h.paths = append(h.paths, h.path(p))
	}
	src := FileSource{Paths: h.paths, Logger: slog.New(slog.DiscardHandler), watching: func(dirs []string) {
		h.mu.Lock()
		h.dirs = dirs
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var readies atomic.Int32
	ready := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, h.events, func() {
			readies.Add(1)
			ready <- struct{}{}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if n := readies.Load(); n != 1 {
			t.Errorf("ready called %d times, want once", n)
		}
	})
	select {
	case <-ready:
	case <-time.After(waitFor):
		t.Fatal("the file source never became ready")
	}
	return h
}

func (h *files) path(rel string) string { return filepath.Join(h.root, rel) }

// watching waits until exactly the directories named are watched.
func (h *files) watching(dirs ...string) {
	h.t.Helper()
	want := make([]string, len(dirs))
	for i, d := range dirs {
		want[i] = h.path(d)
	}
	slices.Sort(want)
	deadline := time.After(waitFor)
	for {
		h.mu.Lock()
		got := h.dirs
		h.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		select {
		case <-h.changed:
		case <-deadline:
			h.t.Fatalf("watching %v, want %v", got, want)
		}
	}
}

// event waits for an event saying the file exists, or not. Every event must be about one of
// the files.
func (h *files) event(rel string, exists bool) {
	h.t.Helper()
	subject := h.path(rel)
	deadline := time.After(waitFor)
	for {
		for i, ev := range h.pending {
			if ev.Source != SourceFile || !slices.Contains(h.paths, ev.Subject) {
				h.t.Fatalf("event about something else: %+v", ev)
			}
			if ev.Subject == subject && ev.Exists == exists {
				h.pending = h.pending[i+1:]
				return
			}
		}
		h.pending = nil
		select {
		case <-h.events.Wake():
			h.pending = h.events.Take()
		case <-deadline:
			h.t.Fatalf("no event saying %s exists=%v", rel, exists)
		}
	}
}

func (h *files) do(op string, args ...string) {
	h.t.Helper()
	var err error
	switch op {
	case "mkdir":
		err = os.Mkdir(h.path(args[0]), 0o755)
	case "mkdir -p":
		err = os.MkdirAll(h.path(args[0]), 0o755)
	case "touch":
		err = os.WriteFile(h.path(args[0]), nil, 0o644)
	case "rm":
		err = os.Remove(h.path(args[0]))
	case "rm -r":
		err = os.RemoveAll(h.path(args[0]))
	case "mv":
		err = os.Rename(h.path(args[0]), h.path(args[1]))
	default:
		h.t.Fatalf("unknown step %s", op)
	}
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, strings.Join(args, " "), err)
	}
}

// A step acts on the directory, or waits for the source to see something.
type step func(h *files)

func do(op string, args ...string) step { return func(h *files) { h.t.Helper(); h.do(op, args...) } }

func watching(dirs ...string) step { return func(h *files) { h.t.Helper(); h.watching(dirs...) } }

func event(rel string, exists bool) step {
	return func(h *files) { h.t.Helper(); h.event(rel, exists) }
}

func TestFileSource(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
		paths    []string
		steps    []step
	}{
		{
			name: "directory there from the start", existing: []string{"run"}, paths: []string{"run/reboot-required"},
			steps: []step{watching("run"),
				do("touch", "run/other"), do("mkdir", "run/sub"), do("touch", "run/reboot-required"), event("run/reboot-required", true),
				do("rm", "run/reboot-required"), event("run/reboot-required", false)},
		},
		{
			name: "directory created after the start", paths: []string{"run/reboot-required"},
			steps: []step{watching("."),
				do("mkdir", "run"), watching("run"),
				do("touch", "run/reboot-required"), event("run/reboot-required", true)},
		},
		{
			name: "missing levels appear one at a time", existing: []string{"a"}, paths: []string{"a/b/c/reboot-required"},
			steps: []step{watching("a"),
				do("mkdir", "a/b"), watching("a/b"),
				do("mkdir", "a/b/c"), watching("a/b/c"),
				do("touch", "a/b/c/reboot-required"), event("a/b/c/reboot-required", true)},
		},
		{
			name: "mkdir -p and the file at once", existing: []string{"a"}, paths: []string{"a/b/c/reboot-required"},
			steps: []step{watching("a"),
				do("mkdir -p", "a/b/c"), do("touch", "a/b/c/reboot-required"), event("a/b/c/reboot-required", true),
				watching("a/b/c")},
		},
		{
			name: "directory deleted and created again", existing: []string{"run"}, paths: []string{"run/reboot-required"},
			steps: []step{watching("run"),
				do("touch", "run/reboot-required"), event("run/reboot-required", true),
				do("rm -r", "run"), event("run/reboot-required", false), watching("."),
				do("mkdir", "run"), watching("run"),
				do("touch", "run/reboot-required"), event("run/reboot-required", true)},
		},
		{
			name: "directory deleted and created again at once, with the file", existing: []string{"run"}, paths: []string{"run/reboot-required"},
			steps: []step{watching("run"),
				do("rm -r", "run"), do("mkdir", "run"), do("touch", "run/reboot-required"), event("run/reboot-required", true),
				watching("run")},
		},
		{
			name: "ancestors deleted, then all created again", existing: []string{"a/b/c"}, paths: []string{"a/b/c/reboot-required"},
			steps: []step{watching("a/b/c"),
				do("rm -r", "a/b"), watching("a"),
				do("mkdir -p", "a/b/c"), do("touch", "a/b/c/reboot-required"), event("a/b/c/reboot-required", true),
				watching("a/b/c")},
		},
		{
			name: "directory moved away and back", existing: []string{"run"}, paths: []string{"run/reboot-required"},
			steps: []step{watching("run"),
				do("touch", "run/reboot-required"), event("run/reboot-required", true),
				do("mv", "run", "run.old"), event("run/reboot-required", false), watching("."),
				do("mv", "run.old", "run"), event("run/reboot-required", true), watching("run")},
		},
		{
			name: "two files, one directory inside the other", paths: []string{"x/reboot-required", "x/y/reboot-required"},
			steps: []step{watching("."),
				do("mkdir", "x"), watching("x"),
				do("mkdir", "x/y"), watching("x", "x/y"),
				do("touch", "x/y/reboot-required"), event("x/y/reboot-required", true),
				do("touch", "x/reboot-required"), event("x/reboot-required", true),
				do("rm -r", "x/y"), event("x/y/reboot-required", false), watching("x")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startFiles(t, tt.existing, tt.paths)
			for _, s := range tt.steps {
				s(h)
			}
		})
	}
}
