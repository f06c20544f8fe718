package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/systemd"
)

// notEnabled is the daemon of a node whose operator has not said yet that it may reboot
// (--enabled=false, which the package installs): it reads and writes nothing, tells systemd
// why it idles and how to change that, and waits to be stopped.
func notEnabled(ctx context.Context, e env, g connFlags, stderr io.Writer) error {
	log, err := g.logger(stderr)
	if err != nil {
		return err
	}
	status := "not enabled: " + enableHint(e)
	log.Warn(status + "; until then this daemon does nothing and this node never reboots")
	if err := (systemd.Notifier{Socket: e.get("NOTIFY_SOCKET")}).Ready(status); err != nil {
		log.Warn("could not tell systemd", logkey.Err, err)
	}
	<-ctx.Done()
	return nil
}

// requireEnabled refuses a reboot of a node whose daemon is not enabled: its operator has not
// said yet that it may reboot (the package installs REBOOTMGR_ENABLED=false).
func requireEnabled(e env) error {
	const name = "REBOOTMGR_ENABLED"
	v, from, ok := e.setting(name)
	if !ok {
		return nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%w: %s=%q %s: want true or false", errUsage, name, v, where(from))
	}
	if on {
		return nil
	}
	return alsoIs{fmt.Errorf("this node's daemon is not enabled (%s=%s %s): its operator has not said it may reboot; nothing done (rebootmgr reboot --force reboots it anyway, through every gate; --dry-run shows what would happen)",
		name, v, where(from)), errNotEnabled}
}

// errNotEnabled ends a reboot refused because the node's daemon is not enabled: it ends as a
// node that is disabled (exit 101).
var errNotEnabled = fmt.Errorf("not enabled: %w", ending.ErrDisabled)

// enableHint says how to enable the daemon, given where --enabled=false came from.
func enableHint(e env) string {
	const name = "REBOOTMGR_ENABLED"
	if v, from, ok := e.setting(name); ok {
		if on, err := strconv.ParseBool(v); err == nil && !on {
			if from == "environment" {
				return fmt.Sprintf("%s=%s is set in the daemon's environment: set it to true", name, v)
			}
			return fmt.Sprintf("set %s=true in %s, then systemctl restart rebootmgr", name, from)
		}
	}
	return "the command line says --enabled=false"
}
