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

// triggered names what requests a reboot of this node ("" when nothing does).
func (p *Pipeline) triggered(ctx context.Context) (string, error) {
	for _, path := range p.TriggerFiles {
		_, err := os.Stat(path)
		if err == nil {
			return "file " + path, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("reboot-required file: %w", err)
		}
	}
	f, err := p.Store.Trigger(ctx, p.Node)
	if err != nil {
		return "", err
	}
	if f.Set {
		if v := clip.OneLine(f.Value); v != "" {
			return "key reboot_required: " + v, nil
		}
		return "key reboot_required", nil
	}
	return "", nil
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
