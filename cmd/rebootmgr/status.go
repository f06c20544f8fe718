package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
)

// statusFlags are status's flags: how to reach Consul, the node whose files are this machine's,
// the settings it is judged by when its daemon published none, and --json.
type statusFlags struct {
	connFlags
	node string
	gateFlags
	json bool
}

func statusFlagSet() (*flagSet, *statusFlags) {
	var f statusFlags
	fs := newFlagSet("status")
	fs.group(connGroup, func(g *flag.FlagSet) {
		f.connFlags.register(g)
		registerNode(g, &f.node, "this machine's node, whose files status reads (default: the local Consul agent's node, if it is this machine's host name)")
		f.connFlags.registerDatacenters(g, "fleet")
	})
	fs.group(gatesGroup+" (this node's, where its daemon published none)", f.gateFlags.register)
	fs.group("Output", func(g *flag.FlagSet) {
		g.BoolVar(&f.json, "json", false, "print the documented JSON document instead of the table")
	})
	return fs, &f
}

func runStatus(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs, f := statusFlagSet()
	fs.Usage = fs.usage(stdout, "rebootmgr status [--json]", `  rebootmgr status                      the fleet at a glance
  rebootmgr status --json | jq '.nodes[] | select(.blocked != null)'
`)
	if err := parse(fs.FlagSet, args, e); err != nil {
		return err
	}
	return f.inDatacenters(ctx, e, stdout, f.json, func(stdout io.Writer) error { return showStatus(ctx, f, e, stdout, stderr) })
}

// showStatus prints the status of the fleet of one datacenter (see connFlags.inDatacenters).
func showStatus(ctx context.Context, f *statusFlags, e env, stdout, stderr io.Writer) error {
	o, err := f.operator(e, stderr)
	if err != nil {
		return err
	}
	local := f.node
	if !f.home(ctx, o.client) {
		// This machine is a node of its agent's datacenter: a node of another is not it, even
		// of the same name.
		local = ""
	} else if local == "" {
		// Only the local node's files are visible; without an agent there is no local node, and
		// the agent's node is this machine only if it bears its host name.
		local, _ = o.node(ctx, nil, "")
		if here, _, err := e.isThisMachine(local); local != "" && (err != nil || !here) {
			local = ""
		}
	}
	var self *fleet.Local
	if local != "" {
		log, err := f.logger(stderr)
		if err != nil {
			return err
		}
		if self, err = f.localState(local, log); err != nil {
			return err
		}
	}
	snap, err := fleet.Reader{
		Source: o.store,
		Local:  local, LocalFiles: f.triggerFiles.values, LocalState: self, FileExists: fileExists, Now: time.Now,
	}.Read(ctx)
	if err != nil {
		return err
	}
	src, err := f.alertSource()
	if err != nil {
		return err
	}
	if src != nil {
		snap.Alerts = src.Read(ctx)
	}
	st := fleet.Compute(snap)
	if f.json {
		return fleet.WriteJSON(stdout, st)
	}
	return fleet.WriteTableFit(stdout, st, colorful(stdout, e), tableWidth(stdout, e))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// colorful reports whether w is a terminal that wants colours (NO_COLOR unset, TERM not dumb).
func colorful(w io.Writer, e env) bool {
	if e.get("NO_COLOR") != "" || e.get("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
