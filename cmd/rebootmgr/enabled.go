package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/systemd"
)

// notEnabled is the daemon of a node whose operator has not said yet that it may reboot
// (--enabled=false, which the package installs): it reads and writes nothing, tells systemd
// why it idles and how to change that, and waits to be stopped.
func notEnabled(ctx context.Context, e env, g globalFlags, stderr io.Writer) error {
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
