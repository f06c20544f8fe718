package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"

	"github.com/rebootmgr/rebootmgr/logkey"
)

// RebootCommand reboots the machine with a shell command (systemctl reboot, in production). The
// command does not get rebootmgr's Consul credentials, as tasks do not.
type RebootCommand struct {
	Command string
	Logger  *slog.Logger
}

// Reboot runs the command and returns when it exits; the machine goes down after that.
func (r RebootCommand) Reboot(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", r.Command)
	cmd.Env = withoutCredentials(os.Environ())
	out, err := cmd.CombinedOutput()
	if len(out) > 0 {
		r.Logger.Info("reboot command output", logkey.Command, r.Command, logkey.Output, string(out))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", r.Command, err)
	}
	return nil
}
