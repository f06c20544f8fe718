package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
)

func runStatus(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var g globalFlags
	g.register(fs)
	var files listFlag
	files.values = defaultTriggerFiles()
	fs.Var(&files, "reboot-required-file", "a file whose existence requests a reboot of this node (repeatable)")
	asJSON := fs.Bool("json", false, "print the documented JSON document instead of the table")
	fs.Usage = usageFunc(fs, stdout, "rebootmgr status [--json]", `  rebootmgr status                      the fleet at a glance
  rebootmgr status --json | jq '.nodes[] | select(.blocked != null)'
`)
	if err := parse(fs, args, e); err != nil {
		return err
	}
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	local := g.node
	if local == "" {
		// Only the local node's files are visible; without an agent there is no local node.
		local, _ = o.node(ctx, nil, "")
	}
	snap, err := fleet.Reader{
		Client: o.client, Keys: o.keys,
		Local: local, LocalFiles: files.values, FileExists: fileExists, Now: time.Now,
	}.Read(ctx)
	if err != nil {
		return err
	}
	st := fleet.Compute(snap)
	if *asJSON {
		return fleet.WriteJSON(stdout, st)
	}
	return fleet.WriteTable(stdout, st, colorful(stdout, e))
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
