package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// Sentinel is a command that says whether the machine needs a reboot (exit 0: it does).
type Sentinel interface {
	// Ask runs the command once: required only when it says a reboot is required; said is its
	// verdict in a few words. A command that cannot run, is killed or times out never asks.
	Ask(ctx context.Context) (required bool, said string)
	// String names the command.
	String() string
}

// Request is what asks for a reboot of this node.
type Request struct {
	// Why names it: "file PATH", "key reboot_required[: VALUE]", "command CMD" ("" when nothing
	// does).
	Why string
	// Written is when a reboot-required file was last written (zero for a key or a command).
	Written time.Time
	// Command: a reboot-required command asked (its answer carries no date).
	Command bool
}

// triggered is what requests a reboot of this node (Why "" when nothing does): a
// reboot-required file, the node's reboot_required key, or a reboot-required command, in that
// order (the commands, the slowest, run only when nothing else asks).
func (p *Pipeline) triggered(ctx context.Context) (Request, error) {
	for _, path := range p.TriggerFiles {
		fi, err := os.Stat(path)
		if err == nil {
			return Request{Why: "file " + path, Written: fi.ModTime()}, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return Request{}, fmt.Errorf("reboot-required file: %w", err)
		}
	}
	f, err := p.Store.Trigger(ctx, p.Node)
	if err != nil {
		return Request{}, err
	}
	if f.Set {
		if v := clip.OneLine(f.Value); v != "" {
			return Request{Why: "key reboot_required: " + v}, nil
		}
		return Request{Why: "key reboot_required"}, nil
	}
	for _, s := range p.Sentinels {
		required, said := s.Ask(ctx)
		if err := context.Cause(ctx); err != nil {
			return Request{}, err
		}
		if required {
			return Request{Why: "command " + s.String(), Command: true}, nil
		}
		p.Logger.Debug("reboot-required command says no reboot", logkey.Command, s.String(), logkey.Outcome, said)
	}
	return Request{}, nil
}

// removeTriggerFiles removes the reboot-required files that asked for the reboot just done;
// a file written after the reboot started is a new request and stays.
func (p *Pipeline) removeTriggerFiles(started time.Time) error {
	for _, path := range p.TriggerFiles {
		fi, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reboot-required file: %w", err)
		}
		if !started.IsZero() && fi.ModTime().After(started) {
			p.Logger.Info("reboot-required file written after the reboot started: kept as a new request", logkey.File, path)
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove reboot-required file: %w", err)
		}
	}
	return nil
}
