package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
)

// triggered is what asks for a reboot of this node (Why "" when nothing does), as the sources
// are asked (see gate.Sources): a reboot-required file, the node's reboot_required key, or a
// reboot-required command, the first that asks.
func (p *Pipeline) triggered(ctx context.Context) (gate.Asked, error) {
	a, err := gate.Sources{
		Files:    p.TriggerFiles,
		Key:      func(ctx context.Context) (place.Flag, error) { return p.Store.Trigger(ctx, p.Node) },
		Commands: p.Sentinels,
	}.Ask(ctx)
	for _, said := range a.Said {
		p.Logger.Debug("reboot-required command asked", logkey.Outcome, said)
	}
	return a, err
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
