package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/fleettest"
)

type fixture struct {
	dir string
	log *fleettest.Log
	r   *Runner
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{PreDir, PostDir} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buf := &fleettest.Log{}
	return &fixture{dir: dir, log: buf, r: &Runner{
		Dir: dir, Timeout: 5 * time.Second, Grace: 300 * time.Millisecond, Node: "n1",
		Env: []string{"PATH=" + os.Getenv("PATH")}, Owner: os.Geteuid(),
		Logger: slog.New(slog.NewTextHandler(buf, nil)),
	}}
}

func (f *fixture) write(t *testing.T, phase, name, script string, mode os.FileMode) string {
	t.Helper()
	sub, _ := phaseDir(phase)
	path := filepath.Join(f.dir, sub, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOrderEnvAndSkipped(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "out")
	rec := `echo "$(basename "$0") $REBOOTMGR_NODE $REBOOTMGR_PHASE $REBOOTMGR_DRY_RUN" >> ` + out
	for _, name := range []string{"20-b", "10-a", "3-c", ".hidden", "x~", "y.dpkg-old", "z.rpmnew", "w.dpkg-dist"} {
		f.write(t, Pre, name, rec, 0o755)
	}
	if err := os.Mkdir(filepath.Join(f.dir, PreDir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Run(context.Background(), Pre, true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want := "10-a n1 pre 1\n20-b n1 pre 1\n3-c n1 pre 1\n"
	if string(got) != want {
		t.Fatalf("ran:\n%s\nwant:\n%s", got, want)
	}
}

func TestOutputLogged(t *testing.T) {
	f := newFixture(t)
	f.write(t, Post, "10-talk", "echo hello from the task; echo to stderr >&2", 0o755)
	if err := f.r.Run(context.Background(), Post, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"task=10-talk", "hello from the task", "to stderr"} {
		if !strings.Contains(f.log.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, f.log)
		}
	}
}

func TestFailureStopsTheRun(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "ran")
	f.write(t, Pre, "10-fail", "echo evacuation failed: 3 VMs left; exit 3", 0o755)
	f.write(t, Pre, "20-next", "touch "+marker, 0o755)
	err := f.r.Run(context.Background(), Pre, false)
	var te *Error
	if !errors.As(err, &te) || te.Task != "10-fail" || te.TimedOut {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "3 VMs left") {
		t.Fatalf("error does not say why: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the task after a failed one ran")
	}
}

func TestTimeoutKillsTheWholeGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"children that obey SIGTERM", "sleep 1000 & echo $! > PIDFILE; sleep 1000"},
		{"children that ignore SIGTERM", "(trap '' TERM; exec sleep 1000) & echo $! > PIDFILE; trap '' TERM; sleep 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.r.Timeout = 300 * time.Millisecond
			pidfile := filepath.Join(t.TempDir(), "pid")
			f.write(t, Pre, "10-hang", strings.ReplaceAll(tt.script, "PIDFILE", pidfile), 0o755)
			err := f.r.Run(context.Background(), Pre, false)
			var te *Error
			if !errors.As(err, &te) || !te.TimedOut {
				t.Fatalf("err = %v, want a timeout", err)
			}
			data, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			if !gone(pid) {
				t.Fatalf("child %d of the timed-out task survived", pid)
			}
		})
	}
}

// alive reports whether pid runs (a zombie waiting for its parent does not).
// gone says whether pid ends within 5 s: a SIGKILL sent to it takes effect only once the kernel
// runs it, which on a busy machine may be a moment after the kill returned.
func gone(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestCancelEndsTheTask(t *testing.T) {
	f := newFixture(t)
	started := filepath.Join(t.TempDir(), "started")
	f.write(t, Pre, "10-hang", "touch "+started+"; sleep 1000", 0o755)
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop flag")
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx, Pre, false) }()
	waitFor(t, func() bool { _, err := os.Stat(started); return err == nil })
	cancel(stop)
	if err := <-done; !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the cancel cause", err)
	}
}

func TestUnsafe(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture)
		want  string
	}{
		{"not executable", func(t *testing.T, f *fixture) { f.write(t, Pre, "10-x", "true", 0o644) }, "not executable"},
		{"group writable", func(t *testing.T, f *fixture) { f.write(t, Post, "10-x", "true", 0o775) }, "writable by group or others"},
		{"world writable", func(t *testing.T, f *fixture) { f.write(t, Pre, "10-x", "true", 0o757) }, "writable by group or others"},
		{"writable directory", func(t *testing.T, f *fixture) {
			f.write(t, Pre, "10-x", "true", 0o755)
			chmod(t, filepath.Join(f.dir, PreDir), 0o777)
		}, "writable by group or others"},
		{"writable top directory", func(t *testing.T, f *fixture) { chmod(t, f.dir, 0o777) }, "writable by group or others"},
		{"owned by someone else", func(t *testing.T, f *fixture) {
			p := f.write(t, Post, "10-x", "true", 0o755)
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
		{"fifo", func(t *testing.T, f *fixture) {
			if err := syscall.Mkfifo(filepath.Join(f.dir, PreDir, "10-fifo"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(t, f)
			err := f.r.Validate()
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrUnsafe saying %q", err, tt.want)
			}
		})
	}
}

// A missing tasks directory (a typo in --tasks-dir, a package not installed) is an error, never
// "no tasks": a compute node would reboot without evacuating. A tasks directory without a
// phase's directory has no tasks of that phase.
func TestMissingTasksDirectory(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, tmp, 0o755)
	tests := []struct {
		name string
		dir  string
		want string // "" for no error
	}{
		{"missing", filepath.Join(tmp, "rebootmrg"), "does not exist"},
		{"missing parent", filepath.Join(tmp, "none", "rebootmgr"), "does not exist"},
		{"a file", file, "is not a directory"},
		{"without phase directories", empty, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{Dir: tt.dir, Timeout: time.Second, Owner: os.Geteuid()}
			errs := map[string]error{"Validate": r.Validate(), "Run": r.Run(context.Background(), Pre, false)}
			for _, phase := range []string{Pre, Post} {
				list, err := r.List(phase)
				if err == nil && len(list) != 0 {
					t.Fatalf("List(%s) = %v", phase, list)
				}
				errs["List "+phase] = err
			}
			for call, err := range errs {
				if tt.want == "" {
					if err != nil {
						t.Errorf("%s: %v", call, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.dir) {
					t.Errorf("%s = %v, want an error naming %s saying %q", call, err, tt.dir, tt.want)
				}
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls a condition that a child process makes true; it fails after a long bound.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestObserveHearsEachTaskThatRan(t *testing.T) {
	f := newFixture(t)
	f.write(t, Pre, "10-ok", "true", 0o755)
	f.write(t, Pre, "20-fail", "exit 4", 0o755)
	f.write(t, Pre, "30-never", "true", 0o755)
	type seen struct {
		phase, task string
		failed      bool
	}
	var got []seen
	f.r.Observe = func(phase, task string, took time.Duration, err error) {
		if took <= 0 {
			t.Errorf("%s took %s", task, took)
		}
		var te *Error
		got = append(got, seen{phase, task, errors.As(err, &te)})
	}
	if err := f.r.Run(context.Background(), Pre, true); err == nil {
		t.Fatal("dry run: the failing task did not fail")
	}
	if len(got) != 0 {
		t.Fatalf("a dry run was observed: %v", got)
	}
	if err := f.r.Run(context.Background(), Pre, false); err == nil {
		t.Fatal("the failing task did not fail")
	}
	want := []seen{{Pre, "10-ok", false}, {Pre, "20-fail", true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
}

// A directory among the tasks, or a link to one, is no task: every entry point skips it with a
// warning, and none needs a Logger (rebootmgr check lists tasks without one).
func TestDirectoriesAreSkipped(t *testing.T) {
	calls := []struct {
		name string
		call func(r *Runner) error
	}{
		{"List", func(r *Runner) error {
			list, err := r.List(Pre)
			if err == nil && (len(list) != 1 || list[0].Name != "10-ok") {
				return fmt.Errorf("listed %v, want only 10-ok", list)
			}
			return err
		}},
		{"Validate", func(r *Runner) error { return r.Validate() }},
		{"Run", func(r *Runner) error { return r.Run(context.Background(), Pre, false) }},
	}
	for _, c := range calls {
		for _, withLogger := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s logger=%v", c.name, withLogger), func(t *testing.T) {
				f := newFixture(t)
				f.write(t, Pre, "10-ok", "true", 0o755)
				if err := os.Mkdir(filepath.Join(f.dir, PreDir, "20-subdir"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(f.dir, PostDir), filepath.Join(f.dir, PreDir, "30-link-to-dir")); err != nil {
					t.Fatal(err)
				}
				if !withLogger {
					f.r.Logger = nil
				}
				if err := c.call(f.r); err != nil {
					t.Fatal(err)
				}
				if withLogger {
					for _, name := range []string{"20-subdir", "30-link-to-dir"} {
						if !strings.Contains(f.log.String(), "level=WARN") || !strings.Contains(f.log.String(), name) {
							t.Fatalf("no warning about %s:\n%s", name, f.log)
						}
					}
				}
			})
		}
	}
}

const nobody = 65534

// tree is a fixture with directories around its tasks directory to lead links through.
type tree struct {
	*fixture
	marker string
}

func newTree(t *testing.T) *tree {
	f := newFixture(t)
	return &tree{fixture: f, marker: filepath.Join(t.TempDir(), "ran")}
}

// dir makes a directory with mode, owned by uid.
func (tr *tree) dir(t *testing.T, path string, mode os.FileMode, uid int) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, mode)
	tr.chown(t, path, uid)
	return path
}

func (tr *tree) chown(t *testing.T, path string, uid int) {
	t.Helper()
	if uid == os.Geteuid() {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// script writes a task that records its $0 in the marker.
func (tr *tree) script(t *testing.T, path string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho \"$0\" >> "+tr.marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, 0o755)
	return path
}

func (tr *tree) link(t *testing.T, target, path string) string {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func (tr *tree) pre(name string) string { return filepath.Join(tr.dir0(), PreDir, name) }
func (tr *tree) dir0() string           { return tr.fixture.dir }

// Every directory on the way to a task, links followed, must be one that only root or the
// Owner can change (or have the sticky bit, above the task directories): a task reached
// through any other could be swapped for another file after it was checked.
func TestPathChecks(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the path the task is listed under.
		setup func(t *testing.T, tr *tree) string
		want  string // "" when the task is run
	}{
		{"plain task", func(t *testing.T, tr *tree) string {
			return tr.script(t, tr.pre("20-x"))
		}, ""},
		{"link to a task in a safe directory", func(t *testing.T, tr *tree) string {
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			return tr.link(t, tr.script(t, filepath.Join(lib, "x")), tr.pre("20-x"))
		}, ""},
		{"relative link to a task in a safe directory", func(t *testing.T, tr *tree) string {
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			tr.script(t, filepath.Join(lib, "x"))
			return tr.link(t, "../lib/./x", tr.pre("20-x"))
		}, ""},
		{"link into a directory anyone can write", func(t *testing.T, tr *tree) string {
			open := tr.dir(t, filepath.Join(tr.dir0(), "open"), 0o777, 0)
			return tr.link(t, tr.script(t, filepath.Join(open, "x")), tr.pre("20-x"))
		}, "open is writable by group or others (mode 0777)"},
		{"relative link into a directory anyone can write", func(t *testing.T, tr *tree) string {
			tr.script(t, filepath.Join(tr.dir(t, filepath.Join(tr.dir0(), "open"), 0o777, 0), "x"))
			return tr.link(t, "../open/x", tr.pre("20-x"))
		}, "open is writable by group or others"},
		{"link into a group-writable directory", func(t *testing.T, tr *tree) string {
			open := tr.dir(t, filepath.Join(tr.dir0(), "open"), 0o775, 0)
			return tr.link(t, tr.script(t, filepath.Join(open, "x")), tr.pre("20-x"))
		}, "writable by group or others (mode 0775)"},
		{"link to a link into a directory anyone can write", func(t *testing.T, tr *tree) string {
			open := tr.dir(t, filepath.Join(tr.dir0(), "open"), 0o777, 0)
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			tr.link(t, tr.script(t, filepath.Join(open, "x")), filepath.Join(lib, "y"))
			return tr.link(t, filepath.Join(lib, "y"), tr.pre("20-x"))
		}, "open is writable by group or others"},
		{"link into a directory below a sticky one", func(t *testing.T, tr *tree) string {
			sticky := tr.dir(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky, 0)
			lib := tr.dir(t, filepath.Join(sticky, "lib"), 0o755, 0)
			return tr.link(t, tr.script(t, filepath.Join(lib, "x")), tr.pre("20-x"))
		}, ""},
		{"link into a sticky directory", func(t *testing.T, tr *tree) string {
			sticky := tr.dir(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky, 0)
			return tr.link(t, tr.script(t, filepath.Join(sticky, "x")), tr.pre("20-x"))
		}, "sticky is writable by group or others (mode 0777)"},
		{"link through another user's link in a sticky directory", func(t *testing.T, tr *tree) string {
			sticky := tr.dir(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky, 0)
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			theirs := tr.link(t, lib, filepath.Join(sticky, "theirs"))
			tr.chown(t, theirs, nobody)
			tr.script(t, filepath.Join(lib, "x"))
			return tr.link(t, filepath.Join(theirs, "x"), tr.pre("20-x"))
		}, "theirs is owned by uid 65534"},
		{"link through the Owner's link in a sticky directory", func(t *testing.T, tr *tree) string {
			tr.r.Owner = nobody
			sticky := tr.dir(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky, 0)
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			tr.chown(t, tr.link(t, lib, filepath.Join(sticky, "owners")), nobody)
			tr.script(t, filepath.Join(lib, "x"))
			return tr.link(t, filepath.Join(sticky, "owners", "x"), tr.pre("20-x"))
		}, ""},
		{"link below a sticky directory of another user", func(t *testing.T, tr *tree) string {
			sticky := tr.dir(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky, nobody)
			lib := tr.dir(t, filepath.Join(sticky, "lib"), 0o755, 0)
			return tr.link(t, tr.script(t, filepath.Join(lib, "x")), tr.pre("20-x"))
		}, "sticky is owned by uid 65534"},
		{"link below another user's directory in a sticky directory", func(t *testing.T, tr *tree) string {
			sticky := tr.dir(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky, 0)
			lib := tr.dir(t, filepath.Join(sticky, "lib"), 0o755, nobody)
			return tr.link(t, tr.script(t, filepath.Join(lib, "x")), tr.pre("20-x"))
		}, "lib is owned by uid 65534"},
		{"link into another user's directory", func(t *testing.T, tr *tree) string {
			other := tr.dir(t, filepath.Join(tr.dir0(), "other"), 0o755, nobody)
			return tr.link(t, tr.script(t, filepath.Join(other, "x")), tr.pre("20-x"))
		}, "other is owned by uid 65534, not root"},
		{"link into the Owner's directory", func(t *testing.T, tr *tree) string {
			tr.r.Owner = nobody
			other := tr.dir(t, filepath.Join(tr.dir0(), "other"), 0o755, nobody)
			x := tr.script(t, filepath.Join(other, "x"))
			tr.chown(t, x, nobody)
			return tr.link(t, x, tr.pre("20-x"))
		}, ""},
		{"link to a file anyone can write", func(t *testing.T, tr *tree) string {
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			x := tr.script(t, filepath.Join(lib, "x"))
			chmod(t, x, 0o777)
			return tr.link(t, x, tr.pre("20-x"))
		}, "20-x (a link to %s/lib/x) is writable by group or others"},
		{"link to nowhere", func(t *testing.T, tr *tree) string {
			return tr.link(t, filepath.Join(tr.dir0(), "none"), tr.pre("20-x"))
		}, "no such file or directory"},
		{"link loop", func(t *testing.T, tr *tree) string {
			tr.link(t, "20-y", tr.pre("20-x"))
			return tr.link(t, "20-x", tr.pre("20-y"))
		}, "too many levels of symbolic links"},
		{"tasks directory through a link", func(t *testing.T, tr *tree) string {
			tr.r.Dir = tr.link(t, tr.dir0(), filepath.Join(filepath.Dir(tr.dir0()), "link"))
			tr.script(t, tr.pre("20-x"))
			return filepath.Join(tr.r.Dir, PreDir, "20-x")
		}, ""},
		{"relative tasks directory", func(t *testing.T, tr *tree) string {
			t.Chdir(filepath.Dir(tr.dir0()))
			tr.r.Dir = filepath.Base(tr.dir0())
			return tr.script(t, tr.pre("20-x"))
		}, ""},
		{"tasks directory through a link in a directory anyone can write", func(t *testing.T, tr *tree) string {
			open := tr.dir(t, filepath.Join(filepath.Dir(tr.dir0()), "open"), 0o777, 0)
			tr.r.Dir = tr.link(t, tr.dir0(), filepath.Join(open, "link"))
			return tr.script(t, tr.pre("20-x"))
		}, "open is writable by group or others"},
		{"tasks directory in a directory anyone can write", func(t *testing.T, tr *tree) string {
			chmod(t, filepath.Dir(tr.dir0()), 0o777)
			return tr.script(t, tr.pre("20-x"))
		}, "writable by group or others (mode 0777)"},
		{"tasks directory in a sticky directory", func(t *testing.T, tr *tree) string {
			chmod(t, filepath.Dir(tr.dir0()), 0o777|os.ModeSticky)
			return tr.script(t, tr.pre("20-x"))
		}, ""},
		{"tasks directory in another user's directory", func(t *testing.T, tr *tree) string {
			tr.chown(t, filepath.Dir(tr.dir0()), nobody)
			return tr.script(t, tr.pre("20-x"))
		}, "owned by uid 65534"},
		{"sticky tasks directory", func(t *testing.T, tr *tree) string {
			chmod(t, tr.dir0(), 0o777|os.ModeSticky)
			return tr.script(t, tr.pre("20-x"))
		}, "writable by group or others (mode 0777)"},
		{"sticky phase directory", func(t *testing.T, tr *tree) string {
			chmod(t, filepath.Join(tr.dir0(), PreDir), 0o777|os.ModeSticky)
			return tr.script(t, tr.pre("20-x"))
		}, "writable by group or others (mode 0777)"},
		{"phase directory a link into a directory anyone can write", func(t *testing.T, tr *tree) string {
			open := tr.dir(t, filepath.Join(tr.dir0(), "open"), 0o777, 0)
			pre := tr.dir(t, filepath.Join(open, "pre"), 0o755, 0)
			tr.script(t, filepath.Join(pre, "20-x"))
			if err := os.Remove(filepath.Join(tr.dir0(), PreDir)); err != nil {
				t.Fatal(err)
			}
			tr.link(t, pre, filepath.Join(tr.dir0(), PreDir))
			return tr.pre("20-x")
		}, "open is writable by group or others"},
		{"phase directory a link to nowhere", func(t *testing.T, tr *tree) string {
			if err := os.Remove(filepath.Join(tr.dir0(), PreDir)); err != nil {
				t.Fatal(err)
			}
			tr.link(t, "none", filepath.Join(tr.dir0(), PreDir))
			return ""
		}, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			path := tt.setup(t, tr)
			if tt.want != "" {
				tt.want = strings.ReplaceAll(tt.want, "%s", tr.dir0())
				for call, err := range map[string]error{"Validate": tr.r.Validate(), "Run": tr.r.Run(context.Background(), Pre, false)} {
					if err == nil || !strings.Contains(err.Error(), tt.want) {
						t.Errorf("%s = %v, want an error saying %q", call, err, tt.want)
					}
				}
				if _, err := os.Stat(tr.marker); err == nil {
					t.Fatal("the task ran")
				}
				return
			}
			if err := tr.r.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := tr.r.Run(context.Background(), Pre, false); err != nil {
				t.Fatal(err)
			}
			// A shell script runs by the path it is listed under, so its $0 is that path.
			if got, _ := os.ReadFile(tr.marker); string(got) != path+"\n" {
				t.Fatalf("ran %q, want %q", got, path+"\n")
			}
		})
	}
}

// A task that runs before another can change it, or a directory on its way (as could someone
// who can write there while a long task runs): each task is checked again right before it
// runs.
func TestChangedBeforeItRuns(t *testing.T) {
	tests := []struct {
		name string
		// setup lays out 20-second (it records its run in the marker) and returns what 10-first
		// then runs, with $PRE, $DIR and $LIB standing for the directories.
		setup func(t *testing.T, tr *tree) string
		// upFront: refused before 10-first runs.
		upFront bool
		want    string
	}{
		{"task made writable", func(t *testing.T, tr *tree) string {
			tr.script(t, tr.pre("20-second"))
			return "chmod 0777 $PRE/20-second"
		}, false, "writable by group or others"},
		{"task given away", func(t *testing.T, tr *tree) string {
			tr.script(t, tr.pre("20-second"))
			return "chown 65534 $PRE/20-second"
		}, false, "owned by uid 65534"},
		{"task replaced by a link into a directory anyone can write", func(t *testing.T, tr *tree) string {
			tr.script(t, tr.pre("20-second"))
			tr.script(t, filepath.Join(tr.dir(t, filepath.Join(tr.dir0(), "open"), 0o777, 0), "x"))
			return "ln -sf $DIR/open/x $PRE/20-second"
		}, false, "writable by group or others"},
		{"a directory on a link's way made writable", func(t *testing.T, tr *tree) string {
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			tr.link(t, tr.script(t, filepath.Join(lib, "x")), tr.pre("20-second"))
			return "chmod 0777 $DIR/lib"
		}, false, "lib is writable by group or others"},
		{"a directory below a sticky one, on a link's way, given away", func(t *testing.T, tr *tree) string {
			lib := tr.dir(t, filepath.Join(tr.dir0(), "sticky", "lib"), 0o755, 0)
			chmod(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky)
			tr.link(t, tr.script(t, filepath.Join(lib, "x")), tr.pre("20-second"))
			return "chown 65534 $DIR/sticky/lib"
		}, false, "lib is owned by uid 65534"},
		{"a link in a sticky directory, on a link's way, given away", func(t *testing.T, tr *tree) string {
			sticky := tr.dir(t, filepath.Join(tr.dir0(), "sticky"), 0o777|os.ModeSticky, 0)
			lib := tr.dir(t, filepath.Join(tr.dir0(), "lib"), 0o755, 0)
			tr.link(t, lib, filepath.Join(sticky, "lib"))
			tr.link(t, filepath.Join(sticky, "lib", "x"), tr.pre("20-second"))
			tr.script(t, filepath.Join(lib, "x"))
			return "chown -h 65534 $DIR/sticky/lib"
		}, false, "lib is owned by uid 65534"},
		{"link into a directory anyone can write, its file swapped", func(t *testing.T, tr *tree) string {
			open := tr.dir(t, filepath.Join(tr.dir0(), "open"), 0o777, 0)
			tr.link(t, tr.script(t, filepath.Join(open, "x")), tr.pre("20-second"))
			return "rm $DIR/open/x; printf '#!/bin/sh\\necho evil >> " + tr.marker + "\\n' > $DIR/open/x; chmod 0755 $DIR/open/x; chown 65534 $DIR/open/x"
		}, true, "open is writable by group or others"},
		{"phase directory made writable", func(t *testing.T, tr *tree) string {
			tr.script(t, tr.pre("20-second"))
			return "chmod 0777 $PRE"
		}, false, "pre_boot_tasks is writable by group or others"},
		{"tasks directory given away", func(t *testing.T, tr *tree) string {
			tr.script(t, tr.pre("20-second"))
			return "chown 65534 $DIR"
		}, false, "owned by uid 65534"},
		{"task replaced by a directory", func(t *testing.T, tr *tree) string {
			tr.script(t, tr.pre("20-second"))
			return "rm $PRE/20-second; mkdir $PRE/20-second"
		}, false, "is a directory now"},
		{"task removed", func(t *testing.T, tr *tree) string {
			tr.script(t, tr.pre("20-second"))
			return "rm $PRE/20-second"
		}, false, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if os.Geteuid() != 0 && strings.Contains(tt.name, "given away") {
				t.Skip("needs root to give a file away")
			}
			tr := newTree(t)
			change := tt.setup(t, tr)
			first := filepath.Join(t.TempDir(), "first")
			r := strings.NewReplacer("$PRE", filepath.Join(tr.dir0(), PreDir), "$DIR", tr.dir0())
			tr.write(t, Pre, "10-first", "touch "+first+"; "+r.Replace(change), 0o755)
			err := tr.r.Run(context.Background(), Pre, false)
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run() = %v, want ErrUnsafe saying %q", err, tt.want)
			}
			if got, err := os.ReadFile(tr.marker); err == nil {
				t.Fatalf("20-second ran after it was changed: %q", got)
			}
			if _, err := os.Stat(first); (err == nil) == tt.upFront {
				t.Fatalf("10-first ran: %v, want %v", err == nil, !tt.upFront)
			}
		})
	}
}

// A task's output is read to its end, however long its lines: a task printing a line of
// megabytes must not block on its pipe (and then time out). Long lines are cut in the log and
// in Error.LastLine.
func TestOutputOfAnySize(t *testing.T) {
	xs := func(n int) string { return fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", n) }
	long := strings.Repeat("x", MaxLine) + CutMark
	tests := []struct {
		name   string
		script string
		last   string // Error.LastLine (every task exits 1)
		cut    bool   // the log has a cut line
	}{
		{"a line of 1 MiB and a byte", xs(1<<20+1) + "; echo; echo after", "after", true},
		{"a line of 8 MiB", xs(8<<20) + "; echo", long, true},
		{"8 MiB and no newline", xs(8 << 20), long, true},
		{"8 MiB on stderr", "{ " + xs(8<<20) + "; echo; echo after; } >&2", "after", true},
		{"a line of exactly MaxLine", xs(MaxLine) + "; echo", strings.Repeat("x", MaxLine), false},
		{"a line of MaxLine and a byte", xs(MaxLine + 1), long, true},
		{"a character cut in half", xs(MaxLine-1) + "; printf '\\303\\251\\303\\251\\n'", strings.Repeat("x", MaxLine-1) + CutMark, true},
		{"a long line between short ones", "echo before; " + xs(2<<20) + "; printf '\\r\\nafter\\r\\n'", "after", true},
		{"many lines", "seq 1 50000", "50000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.r.Timeout = 60 * time.Second
			f.write(t, Pre, "10-talk", tt.script+"; exit 1", 0o755)
			err := f.r.Run(context.Background(), Pre, false)
			var te *Error
			if !errors.As(err, &te) || te.TimedOut {
				t.Fatalf("err = %v, want the task to fail (not to time out)", err)
			}
			if te.LastLine != tt.last {
				t.Fatalf("LastLine = %.80q... (%d bytes), want %.80q... (%d bytes)", te.LastLine, len(te.LastLine), tt.last, len(tt.last))
			}
			log := f.log.String()
			if strings.Contains(log, strings.Repeat("x", MaxLine+1)) {
				t.Fatal("a line longer than MaxLine was logged")
			}
			if got := strings.Contains(log, CutMark); got != tt.cut {
				t.Fatalf("cut line logged: %v, want %v", got, tt.cut)
			}
		})
	}
}

// Tasks, and the reboot command, do not get rebootmgr's Consul token or other credentials.
func TestNoConsulCredentials(t *testing.T) {
	env := []struct {
		kv   string
		kept bool
	}{
		{"CONSUL_HTTP_TOKEN=secret-1", false},
		{"CONSUL_HTTP_TOKEN_FILE=/etc/rebootmgr/consul-token", false},
		{"CONSUL_GRPC_TOKEN=secret-2", false},
		{"CONSUL_TOKEN=secret-3", false},
		{"consul_http_token=secret-4", false},
		{"CONSUL_HTTP_AUTH=operator:secret-5", false},
		{"CONSUL_HTTP_TOKEN=", false},
		{"CONSUL_HTTP_ADDR=https://127.0.0.1:8501", true},
		{"CONSUL_CACERT=/etc/consul/ca.pem", true},
		{"CONSUL_NAMESPACE=ops", true},
		{"VAULT_TOKEN=kept", true},
		{"MY_CONSUL_HTTP_TOKEN=kept", true},
		{"PATH=" + os.Getenv("PATH"), true},
	}
	var in []string
	for _, e := range env {
		in = append(in, e.kv)
	}
	check := func(t *testing.T, dump string) {
		t.Helper()
		data, err := os.ReadFile(dump)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(string(data), "\n")
		for _, e := range env {
			if slices.Contains(got, e.kv) != e.kept {
				t.Errorf("%s passed on: %v, want %v", e.kv, !e.kept, e.kept)
			}
		}
		if strings.Contains(string(data), "secret") {
			t.Errorf("a secret was passed on:\n%s", data)
		}
	}
	t.Run("tasks", func(t *testing.T) {
		f := newFixture(t)
		f.r.Env = in
		dump := filepath.Join(t.TempDir(), "env")
		f.write(t, Pre, "10-env", "env > "+dump, 0o755)
		if err := f.r.Run(context.Background(), Pre, false); err != nil {
			t.Fatal(err)
		}
		check(t, dump)
		for _, want := range []string{"REBOOTMGR_NODE=n1", "REBOOTMGR_PHASE=pre"} {
			if data, _ := os.ReadFile(dump); !strings.Contains(string(data), want) {
				t.Errorf("no %s", want)
			}
		}
	})
	t.Run("reboot command", func(t *testing.T) {
		for _, kv := range in {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		dump := filepath.Join(t.TempDir(), "env")
		cmd := RebootCommand{Command: "env > " + dump, Logger: slog.New(slog.DiscardHandler)}
		if err := cmd.Reboot(context.Background()); err != nil {
			t.Fatal(err)
		}
		check(t, dump)
	})
}

// A timeout of zero or less is refused, not taken as "no limit" or as a default.
func TestTimeoutMustBePositive(t *testing.T) {
	for _, timeout := range []time.Duration{0, -time.Nanosecond, -time.Minute} {
		t.Run(timeout.String(), func(t *testing.T) {
			f := newFixture(t)
			f.r.Timeout = timeout
			marker := filepath.Join(t.TempDir(), "ran")
			f.write(t, Pre, "10-x", "touch "+marker, 0o755)
			for call, err := range map[string]error{"Validate": f.r.Validate(), "Run": f.r.Run(context.Background(), Pre, false)} {
				if err == nil || !strings.Contains(err.Error(), "must be positive") || !strings.Contains(err.Error(), timeout.String()) {
					t.Errorf("%s = %v, want an error saying the timeout %s must be positive", call, err, timeout)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the task ran")
			}
		})
	}
}
