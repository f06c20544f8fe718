package tasks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/rebootmgr/rebootmgr/logkey"
)

func phaseDir(phase string) (string, error) {
	switch phase {
	case Pre:
		return PreDir, nil
	case Post:
		return PostDir, nil
	}
	return "", fmt.Errorf("unknown task phase %q", phase)
}

// Validate checks the Runner's timeout and the tasks of both phases.
func (r *Runner) Validate() error {
	if err := r.checkTimeout(); err != nil {
		return err
	}
	for _, phase := range []string{Pre, Post} {
		if _, err := r.List(phase); err != nil {
			return err
		}
	}
	return nil
}

// List returns the tasks of phase in the order they run, after checking that each is safe to
// run (see checkTask). The tasks directory must exist (a mistyped one must not mean "nothing to
// do before the reboot"); a phase without its directory in it has no tasks.
func (r *Runner) List(phase string) ([]Task, error) {
	dir, err := r.dirOf(phase)
	if err != nil || dir == "" {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read task directory: %w", err)
	}
	var out []Task
	for _, e := range entries {
		name := e.Name()
		if skipped(name) {
			continue
		}
		path := filepath.Join(dir, name)
		isDir, err := r.checkTask(path)
		if err != nil {
			return nil, err
		}
		if isDir {
			r.log().Warn("not a task: a directory in the task directory is skipped", logkey.Path, path)
			continue
		}
		out = append(out, Task{Name: name, Path: path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// skipped reports whether a directory entry is no task: hidden files and the leftovers of
// package managers and editors.
func skipped(name string) bool {
	return strings.HasPrefix(name, ".") ||
		strings.HasSuffix(name, "~") ||
		strings.Contains(name, ".dpkg-") ||
		strings.Contains(name, ".rpm") ||
		strings.HasSuffix(name, ".ucf-old") || strings.HasSuffix(name, ".ucf-new") || strings.HasSuffix(name, ".ucf-dist")
}

// dirOf checks the tasks directory and the directory of phase in it, and returns the latter
// (under r.Dir as given, made absolute: tasks run in /); "" when the tasks directory has none.
// Both must be directories that only root or r.Owner can write to, sticky bit or not: whoever
// can add a file there can add a task.
func (r *Runner) dirOf(phase string) (string, error) {
	sub, err := phaseDir(phase)
	if err != nil {
		return "", err
	}
	top, fi, err := r.resolve(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("tasks directory %s does not exist: %w", r.Dir, err)
	}
	if err != nil {
		return "", fmt.Errorf("tasks directory %s: %w", r.Dir, err)
	}
	if err := r.checkTaskDir(r.Dir, fi); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(r.Dir)
	if err != nil {
		return "", fmt.Errorf("tasks directory %s: %w", r.Dir, err)
	}
	dir := filepath.Join(abs, sub)
	// Only the name itself missing means no tasks; a link to nowhere is an error.
	if _, err := os.Lstat(filepath.Join(top, sub)); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if _, fi, err = r.resolve(dir); err != nil {
		return "", fmt.Errorf("task directory %s: %w", dir, err)
	}
	if err := r.checkTaskDir(dir, fi); err != nil {
		return "", err
	}
	return dir, nil
}

func (r *Runner) checkTaskDir(path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%w: task directory %s is not a directory", ErrUnsafe, path)
	}
	return r.checkMode(path, fi, false)
}

// checkTask checks that the task file at path is safe to run: the path leads, through safe
// directories and links only (see resolve), to a regular executable file that only root or
// r.Owner can write to, in a directory that only they can write to, sticky bit or not (whoever
// can add a name there could make it a hard link to any file of root's). Once that holds,
// nobody else can change what the path runs. isDir reports a directory (or a link to one) at
// path instead, which is no task.
func (r *Runner) checkTask(path string) (isDir bool, err error) {
	real, fi, err := r.resolve(path)
	if errors.Is(err, ErrUnsafe) {
		return false, fmt.Errorf("task %s: %w", path, err)
	}
	if err != nil {
		return false, fmt.Errorf("%w: task %s: %v", ErrUnsafe, path, err)
	}
	if fi.IsDir() {
		return true, nil
	}
	name := path
	if real != path {
		name = fmt.Sprintf("%s (a link to %s)", path, real)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%w: task %s is not a regular file", ErrUnsafe, name)
	}
	if err := r.checkMode(name, fi, false); err != nil {
		return false, err
	}
	if fi.Mode().Perm()&0o100 == 0 {
		return false, fmt.Errorf("%w: task %s is not executable (chmod 0755 it, or remove it)", ErrUnsafe, name)
	}
	dir := filepath.Dir(real)
	if fi, err = os.Lstat(dir); err != nil {
		return false, fmt.Errorf("%w: task %s: %v", ErrUnsafe, path, err)
	}
	if err := r.checkMode(dir, fi, false); err != nil {
		return false, fmt.Errorf("task %s: %w", path, err)
	}
	return false, nil
}

// maxLinks bounds the links followed in one path, as the kernel's 40 do.
const maxLinks = 40

// resolve follows path one name at a time from /, as the kernel does when it runs the path,
// links included, and checks every directory a name is looked up in on the way: it must be
// owned by root or r.Owner and not writable by group or others, unless it has the sticky bit
// (like /tmp: then nobody but the owner of an entry, or of the directory, can rename or remove
// the entry, and the next step checks the entry's owner). Every link on the way must be owned
// by root or r.Owner too. So nobody else can change where the path leads. It returns the path
// without links and what is at its end, not followed.
func (r *Runner) resolve(path string) (string, fs.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, err
	}
	checked := map[string]bool{}
	cur := "/"
	todo := strings.Split(abs, "/")
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		if name == "" || name == "." {
			continue
		}
		if !checked[cur] {
			if err := r.checkPassage(cur); err != nil {
				return "", nil, err
			}
			checked[cur] = true
		}
		if name == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", nil, &fs.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
		}
		// A link cannot be changed, only replaced by whoever may remove it: in a sticky
		// directory, its owner.
		if err := r.checkOwner(next, fi); err != nil {
			return "", nil, err
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", nil, err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", nil, err
	}
	return cur, fi, nil
}

// checkPassage checks a directory that a name is looked up in.
func (r *Runner) checkPassage(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "resolve", Path: dir, Err: syscall.ENOTDIR}
	}
	return r.checkMode(dir, fi, true)
}

// checkMode refuses a file or directory that is writable by group or others (a directory with
// the sticky bit may be, when sticky is true), or owned by someone other than root or r.Owner.
func (r *Runner) checkMode(path string, fi fs.FileInfo, sticky bool) error {
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 && !(sticky && fi.Mode()&fs.ModeSticky != 0) {
		return fmt.Errorf("%w: %s is writable by group or others (mode %04o): tasks run as root", ErrUnsafe, path, perm)
	}
	return r.checkOwner(path, fi)
}

// checkOwner refuses a file owned by someone other than root or r.Owner.
func (r *Runner) checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: %s: cannot read its owner", ErrUnsafe, path)
	}
	if st.Uid != 0 && int(st.Uid) != r.Owner {
		return fmt.Errorf("%w: %s is owned by uid %d, not root or uid %d", ErrUnsafe, path, st.Uid, r.Owner)
	}
	return nil
}
