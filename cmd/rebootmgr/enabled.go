package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/store"
	"github.com/rebootmgr/rebootmgr/systemd"
)

// notEnabled is the daemon of a node whose operator has not said yet that it may reboot
// (--enabled=false, which the package installs): it tells systemd why it idles and how to
// change that, says so in Consul (see presentNotEnabled), and waits to be stopped. It watches
// nothing, writes no file, and reboots nothing.
func notEnabled(ctx context.Context, e env, df *daemonFlags, stderr io.Writer) error {
	log, err := df.logger(stderr)
	if err != nil {
		return err
	}
	status := "not enabled: " + enableHint(e)
	log.Warn(status + "; until then this daemon does nothing and this node never reboots")
	if err := (systemd.Notifier{Socket: e.get("NOTIFY_SOCKET")}).Ready(status); err != nil {
		log.Warn("could not tell systemd", logkey.Err, err)
	}
	df.presentNotEnabled(ctx, e, status, log)
	return nil
}

// presentNotEnabled registers the daemon in Consul as not enabled (its meta says enabled=false)
// and says it runs, every --interval, until ctx ends, then that it stopped: status and check on
// any node then say that nothing reboots this node, and why. An agent that cannot be reached, or
// refuses, is asked again at the next interval; the daemon idles all the same.
func (df *daemonFlags) presentNotEnabled(ctx context.Context, e env, status string, log *slog.Logger) {
	client, err := df.consul(e)
	if err != nil {
		log.Warn("cannot reach Consul: status shows no daemon on this node", logkey.Err, err)
		<-ctx.Done()
		return
	}
	settings, err := df.settings(false)
	if err != nil {
		// Nothing reboots here whatever they are: it says that much.
		log.Warn("this node's settings are wrong: the daemon will refuse to start once enabled", logkey.Err, err)
		settings = fleet.Settings{Version: version}
	}
	reg := store.Registration{Client: client, Node: cmp.Or(df.node, "this node"), TTL: 3 * df.interval}
	registered, warned := false, false
	tick := time.NewTicker(df.interval)
	defer tick.Stop()
	for {
		if !registered {
			reg.Meta = settings.Meta(time.Now())
			err = reg.Register(ctx)
			registered = err == nil
		}
		if registered {
			err = reg.Update(ctx, store.DaemonRunning, status)
		}
		if err != nil && !warned && ctx.Err() == nil {
			log.Warn("could not say in Consul that this daemon is not enabled: status shows no daemon on this node until it can (the token needs service \"rebootmgr\" write)", logkey.Err, err)
			warned = true
		}
		select {
		case <-ctx.Done():
			if registered {
				daemonStopped(reg, log)
			}
			return
		case <-tick.C:
		}
	}
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
