package tasks

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rebootmgr/rebootmgr/logkey"
)

// reap waits for the task after SIGTERM; after the grace period its whole group gets SIGKILL.
func (r *Runner) reap(pgid int, waited <-chan error, log *slog.Logger) error {
	grace := time.NewTimer(r.grace())
	defer grace.Stop()
	var werr error
	select {
	case werr = <-waited:
	case <-grace.C:
		log.Warn("task did not exit after SIGTERM: SIGKILL to its process group")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-waited
	}
	// The leader is gone; give the rest of its group what is left of the grace period.
	for groupAlive(pgid) {
		select {
		case <-grace.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return werr
		case <-time.After(20 * time.Millisecond):
		}
	}
	return werr
}

// groupAlive reports whether a process of the group still runs. A zombie does not count: it
// has exited and only waits to be reaped by whoever inherited it.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After "(comm)": state, ppid, pgrp.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

// waitGroupGone waits up to d for the group to have no running process.
func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// waitCopy waits for the output to be read to its end; a process that escaped its group and
// still holds the pipe does not hold up the run longer than d.
func waitCopy(copied <-chan struct{}, pr *os.File, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-copied:
	case <-t.C:
		pr.Close()
		<-copied
	}
}

// MaxLine is how much of a line of a task's output is kept, in the log and in Error.LastLine;
// the rest of a longer line is read and dropped, and the line is marked with CutMark.
const MaxLine = 4096

// CutMark ends a line of output that was cut at MaxLine.
const CutMark = "... (cut)"

// lineLogger logs a task's output line by line under the task's name. It reads everything the
// task writes, however long its lines: a task must never block on a full pipe.
type lineLogger struct {
	log      *slog.Logger
	mu       sync.Mutex
	lastLine string
}

func (l *lineLogger) copy(r io.Reader) {
	// One byte more than is kept: a line of exactly MaxLine fits, newline and all.
	br := bufio.NewReaderSize(r, MaxLine+1)
	cut := false // the rest of the current line is dropped
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than MaxLine: keep its start, read and drop the rest.
			if !cut {
				l.line(string(whole(chunk[:MaxLine])) + CutMark)
				cut = true
			}
			continue
		}
		if !cut && len(chunk) > 0 {
			l.line(strings.TrimSuffix(strings.TrimSuffix(string(chunk), "\n"), "\r"))
		}
		cut = false
		if err != nil {
			return
		}
	}
}

// whole drops a character cut in half at the end of b.
func whole(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i > len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

func (l *lineLogger) line(line string) {
	l.log.Info("task output", logkey.Line, line)
	if strings.TrimSpace(line) != "" {
		l.mu.Lock()
		l.lastLine = line
		l.mu.Unlock()
	}
}

func (l *lineLogger) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastLine
}
