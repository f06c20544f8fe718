package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/tasks"
)

func runStatus(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	// The pipeline's flags: this node is judged by the settings its daemon would use (when no
	// daemon published its own).
	var sf statusFlags
	sf.register(fs)
	f := &sf.rebootFlags
	g, files, asJSON := &f.globalFlags, &f.triggerFiles, &sf.json
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
		// Only the local node's files are visible; without an agent there is no local node, and
		// the agent's node is this machine only if it bears its host name.
		local, _ = o.node(ctx, nil, "")
		if here, _, err := e.isThisMachine(local); local != "" && (err != nil || !here) {
			local = ""
		}
	}
	var self *fleet.Local
	if local != "" {
		if self, err = f.localState(local, stderr); err != nil {
			return err
		}
	}
	snap, err := fleet.Reader{
		Client: o.client, Keys: o.keys,
		Local: local, LocalFiles: files.values, LocalState: self, FileExists: fileExists, Now: time.Now,
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

// statusFlags are status's flags: the pipeline's, and --json.
type statusFlags struct {
	rebootFlags
	json bool
}

func (s *statusFlags) register(fs *flag.FlagSet) {
	s.rebootFlags.register(fs)
	fs.BoolVar(&s.json, "json", false, "print the documented JSON document instead of the table")
}

// localState is what only this node knows of itself: the settings it judges by, its boot id
// and whether the reboot command ran on this boot, and its tasks.
func (f *rebootFlags) localState(node string, stderr io.Writer) (*fleet.Local, error) {
	settings, err := f.settings(true)
	if err != nil {
		return nil, err
	}
	l := &fleet.Local{Settings: settings}
	if _, err := l.Settings.Schedule(node); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if l.BootID, err = pipeline.BootIDFile(f.bootIDFile)(); err != nil {
		return nil, err
	}
	if l.RebootRan, err = pipeline.RebootNote(rebootNote(f.lockFile)).Has(l.BootID); err != nil {
		return nil, err
	}
	log, err := f.logger(stderr)
	if err != nil {
		return nil, err
	}
	r := &tasks.Runner{Dir: f.tasksDir, Owner: os.Geteuid(), Logger: log.With(logkey.Component, "tasks")}
	l.Tasks = map[string]int{}
	for _, phase := range []string{tasks.Pre, tasks.Post} {
		list, err := r.List(phase)
		if err != nil {
			l.TasksErr = err
			break
		}
		l.Tasks[phase] = len(list)
	}
	return l, nil
}

// settings are what this node is judged by that Consul does not hold, as its daemon publishes
// them (see fleet.Settings); enabled is whether the daemon acts.
func (f *rebootFlags) settings(enabled bool) (fleet.Settings, error) {
	blackouts, err := f.blackoutDates()
	if err != nil {
		return fleet.Settings{}, err
	}
	s := fleet.Settings{
		Version: version, Enabled: enabled, Windows: f.windows.values, Spread: f.spread,
		Cooldown: f.cooldown, StayGreen: f.stayGreen, MinRebootInterval: f.minRebootInterval,
	}
	for d := range blackouts {
		s.Blackouts = append(s.Blackouts, d)
	}
	return s, nil
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
