// Package flock keeps a second rebootmgr on the same node from running at the same time:
// an exclusive, non-blocking flock(2) on a file, released by the kernel when the process dies.
package flock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrHeld means another process holds the lock file.
var ErrHeld = errors.New("another rebootmgr is running on this node")

// Lock is a held lock file.
type Lock struct{ f *os.File }

// Acquire takes the lock on path once, without waiting.
func Acquire(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock file %s is held)", ErrHeld, path)
		}
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock back.
func (l *Lock) Release() error {
	return l.f.Close()
}
