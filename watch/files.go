package watch

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/fsnotify/fsnotify"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// FileSource sends an event whenever one of the files is created, written, renamed or
// removed. It watches their directories, since the files come and go. A directory that does
// not exist is watched through its nearest existing ancestor: the watch moves down as the
// missing directories appear and back up when they go, and each time it reaches a file's own
// directory the file is looked at, so that one created together with its directories
// (mkdir -p && touch) is seen at once.
type FileSource struct {
	Paths  []string
	Logger *slog.Logger

	// watching, when set, is called with the directories watched whenever they change.
	watching func(dirs []string)
}

// maxMoves bounds how many times one look moves the watches before it waits for the next
// event; a directory that keeps changing sends events of its own.
const maxMoves = 64

// Run watches until ctx ends. It is ready once the directories are watched.
func (s FileSource) Run(ctx context.Context, events *Events, ready func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		// The tick still looks at the files; a request is only not seen at once.
		s.Logger.Error("cannot watch the reboot-required files: relying on the tick", logkey.Err, err)
		ready()
		<-ctx.Done()
		return nil
	}
	defer w.Close()
	f := newFileWatch(w, s.Paths, s.Logger)
	// The evaluation that follows readiness reads the files itself.
	f.settle(discard{})
	s.report(f)
	ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Clean(ev.Name)
			if f.targets[name] {
				_, err := os.Stat(ev.Name)
				events.Send(Event{Source: SourceFile, Subject: ev.Name, Exists: err == nil})
			}
			if !f.onPath[name] {
				continue
			}
			moved := false
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				moved = f.forget(name, events)
			}
			if f.settle(events) || moved {
				s.report(f)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				events.Send(Event{Source: SourceFile, Subject: "overflow"})
				// Lost events may have been directories coming or going: watch afresh.
				for dir := range f.watched {
					f.forget(dir, discard{})
				}
				f.settle(events)
				s.report(f)
				continue
			}
			s.Logger.Warn("watching reboot-required files", logkey.Err, err)
		}
	}
}

func (s FileSource) report(f *fileWatch) {
	if s.watching == nil {
		return
	}
	dirs := make([]string, 0, len(f.watched))
	for dir := range f.watched {
		dirs = append(dirs, dir)
	}
	slices.Sort(dirs)
	s.watching(dirs)
}

// discard drops events: those of the first look, which the first evaluation reads itself.
type discard struct{}

func (discard) Send(Event) {}

// fileWatch is where the watches of the files are; it is used by one goroutine.
type fileWatch struct {
	w   *fsnotify.Watcher
	log *slog.Logger
	// targets are the files (cleaned), and onPath their directories and every ancestor: the
	// places a watch may be.
	targets, onPath map[string]bool
	// at is the directory watched for each file ("" none).
	at map[string]string
	// watched are the directories with a watch.
	watched map[string]bool
	// failing are directories that exist but cannot be watched, warned about once.
	failing map[string]bool
}

func newFileWatch(w *fsnotify.Watcher, paths []string, log *slog.Logger) *fileWatch {
	f := &fileWatch{w: w, log: log, targets: map[string]bool{}, onPath: map[string]bool{},
		at: map[string]string{}, watched: map[string]bool{}, failing: map[string]bool{}}
	for _, p := range paths {
		p = filepath.Clean(p)
		f.targets[p] = true
		for dir := filepath.Dir(p); !f.onPath[dir]; dir = filepath.Dir(dir) {
			f.onPath[dir] = true
		}
	}
	return f
}

// settle moves the watch of each file to its nearest existing directory, until that no longer
// changes; it reports whether any watch moved. When a watch reaches a file's own directory the
// file is looked at, since it may have been created before the watch was there.
func (f *fileWatch) settle(events sink) bool {
	moved := false
	for range maxMoves {
		changed := false
		for p := range f.targets {
			want := filepath.Dir(p)
			dir := nearestDir(want)
			if dir == f.at[p] {
				continue
			}
			if !f.watched[dir] {
				if err := f.w.Add(dir); err != nil {
					if isDir(dir) {
						if !f.failing[dir] {
							// The tick still looks at the files; they are only not seen at once.
							f.log.Warn("cannot watch a reboot-required file's directory: relying on the tick", logkey.Dir, dir, logkey.Err, err)
							f.failing[dir] = true
						}
						continue
					}
					// Gone since it was looked at: look again.
					changed = true
					continue
				}
				delete(f.failing, dir)
				f.watched[dir] = true
			}
			f.at[p] = dir
			changed, moved = true, true
			if dir == want {
				if _, err := os.Stat(p); err == nil {
					events.Send(Event{Source: SourceFile, Subject: p, Exists: true})
				}
			}
		}
		if !changed {
			break
		}
	}
	f.prune()
	return moved
}

// forget drops the watch of a directory that was removed or moved away (its watch went with
// it); a file whose own directory it was is gone from its path. It reports whether dir was
// watched.
func (f *fileWatch) forget(dir string, events sink) bool {
	if !f.watched[dir] {
		return false
	}
	// The kernel has most often dropped the watch already.
	_ = f.w.Remove(dir)
	delete(f.watched, dir)
	for p, at := range f.at {
		if at != dir {
			continue
		}
		f.at[p] = ""
		if dir == filepath.Dir(p) {
			events.Send(Event{Source: SourceFile, Subject: p, Exists: false})
		}
	}
	return true
}

// prune removes the watches no file needs any more.
func (f *fileWatch) prune() {
	needed := map[string]bool{}
	for _, dir := range f.at {
		needed[dir] = true
	}
	for dir := range f.watched {
		if !needed[dir] {
			// An error means the watch is gone already.
			_ = f.w.Remove(dir)
			delete(f.watched, dir)
		}
	}
}

// nearestDir is dir if it is a directory, else its nearest ancestor that is.
func nearestDir(dir string) string {
	for !isDir(dir) {
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return dir
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
