package gate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/place"
)

// Request is what asks for a reboot of a node.
type Request struct {
	// Why names it: "file PATH", "key reboot_required[: VALUE]", "command CMD" ("" when nothing
	// does).
	Why string
	// Written is when a reboot-required file was last written (zero for a key or a command).
	Written time.Time
	// Command: a reboot-required command asked (its answer carries no date).
	Command bool
}

// Asked is what asks for a reboot of a node: the request the reboot is for (the first source
// that asks), and for the evidence every source that asks, and what the commands said.
type Asked struct {
	Request
	// By are the sources that ask, in the order they are asked, as Request.Why names them.
	By []string
	// Said are the reboot-required commands' verdicts, one a line.
	Said []string
}

// Sentinel is a command that says whether the machine needs a reboot (exit 0: it does).
type Sentinel interface {
	// Ask runs the command once: required only when it says a reboot is required; said is its
	// verdict in a few words. A command that cannot run, is killed or times out never asks.
	Ask(ctx context.Context) (required bool, said string)
	// String names the command.
	String() string
}

// File is a reboot-required file found, and when it was last written.
type File struct {
	Path    string
	Written time.Time
}

// Sources are what may ask for a reboot of a node, in the order they are asked: the
// reboot-required files, the node's reboot_required key, then the reboot-required commands
// (the slowest, run only when nothing else asks, unless Every).
type Sources struct {
	// Files are the reboot-required files, looked at with Stat (the file system's when nil).
	Files []string
	Stat  func(path string) (written time.Time, found bool, err error)
	// Key reads the node's reboot_required key (nil: not looked at).
	Key func(ctx context.Context) (place.Flag, error)
	// Commands are the reboot-required commands.
	Commands []Sentinel
	// Every asks every source, for the evidence (check); else the first that asks ends it.
	Every bool
}

// Ask asks the sources, in their order, what asks for a reboot.
func (s Sources) Ask(ctx context.Context) (Asked, error) {
	var a Asked
	stat := s.Stat
	if stat == nil {
		stat = statFile
	}
	for _, path := range s.Files {
		written, found, err := stat(path)
		if err != nil {
			return Asked{}, err
		}
		if !found {
			continue
		}
		a.ask(Request{Why: "file " + path, Written: written})
		if !s.Every {
			return a, nil
		}
	}
	if s.Key != nil {
		f, err := s.Key(ctx)
		if err != nil {
			return Asked{}, err
		}
		if f.Set {
			a.ask(KeyRequest(f))
			if !s.Every {
				return a, nil
			}
		}
	}
	for _, c := range s.Commands {
		required, said := c.Ask(ctx)
		if err := context.Cause(ctx); err != nil {
			return Asked{}, err
		}
		a.Said = append(a.Said, fmt.Sprintf("command %s: %s", c, said))
		if required {
			a.ask(Request{Why: "command " + c.String(), Command: true})
			if !s.Every {
				return a, nil
			}
		}
	}
	return a, nil
}

// ask notes that r asks: the first to ask is the request.
func (a *Asked) ask(r Request) {
	if a.Why == "" {
		a.Request = r
	}
	a.By = append(a.By, r.Why)
}

// KeyRequest is the request of the node's reboot_required key f, which is set.
func KeyRequest(f place.Flag) Request {
	if v := clip.OneLine(f.Value); v != "" {
		return Request{Why: "key reboot_required: " + v}
	}
	return Request{Why: "key reboot_required"}
}

// StatFiles are the reboot-required files of paths that exist, with their write times.
func StatFiles(paths []string) ([]File, error) {
	var out []File
	for _, path := range paths {
		written, found, err := statFile(path)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, File{Path: path, Written: written})
		}
	}
	return out, nil
}

// FilesFound is a Stat that finds the files of found, as they were seen.
func FilesFound(found []File) func(path string) (time.Time, bool, error) {
	return func(path string) (time.Time, bool, error) {
		for _, f := range found {
			if f.Path == path {
				return f.Written, true, nil
			}
		}
		return time.Time{}, false, nil
	}
}

// statFile is when the reboot-required file path was last written, if it exists.
func statFile(path string) (time.Time, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reboot-required file: %w", err)
	}
	return fi.ModTime(), true, nil
}
