package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestUnknownSettings: a REBOOTMGR_* name no command knows, in the configuration file or the
// environment, is a usage error (exit 64) before anything is read or written: the one line
// names where it was set (file:line, or the environment) and the nearest known name, and stdout
// stays empty. A misspelt window would otherwise leave the node rebooting at any hour. No Consul
// agent runs: none is reached.
func TestUnknownSettings(t *testing.T) {
	unreachable := []string{"--consul-addr", "127.0.0.1:1"}
	tests := []struct {
		name    string
		args    []string
		file    string // the configuration file's lines
		environ map[string]string
		says    []string // what the last line says; FILE is the file's path
	}{
		{
			name: "a misspelt window in the file",
			args: append([]string{"check"}, unreachable...),
			file: "# this node\nREBOOTMGR_ENABLED=true\nREBOOTMGR_REBOOT_WINDOWS=Mon-Fri 02:00-05:00 Europe/Berlin\n",
			says: []string{"FILE:3: REBOOTMGR_REBOOT_WINDOWS", "did you mean REBOOTMGR_REBOOT_WINDOW?"},
		},
		{
			name:    "a misspelt window in the environment",
			args:    append([]string{"status"}, unreachable...),
			environ: map[string]string{"REBOOTMGR_REBOOT_WINDOWS": "Mon-Fri 02:00-05:00"},
			says:    []string{"environment: REBOOTMGR_REBOOT_WINDOWS", "did you mean REBOOTMGR_REBOOT_WINDOW?"},
		},
		{
			name:    "a dry run misspelt",
			args:    append([]string{"history"}, unreachable...),
			environ: map[string]string{"REBOOTMGR_DRYRUN": "1"},
			says:    []string{"environment: REBOOTMGR_DRYRUN", "did you mean REBOOTMGR_DRY_RUN?"},
		},
		{
			name: "the daemon's switch misspelt",
			args: []string{"config"},
			file: "REBOOTMGR_ENABLE=true\n",
			says: []string{"FILE:1: REBOOTMGR_ENABLE", "did you mean REBOOTMGR_ENABLED?"},
		},
		{
			name: "the Python rebootmgr's port",
			args: append([]string{"trigger", "n1"}, unreachable...),
			file: "REBOOTMGR_CONSUL_ADDR=10.0.0.1\nREBOOTMGR_CONSUL_PORT=8501\n",
			says: []string{"FILE:2: REBOOTMGR_CONSUL_PORT", "REBOOTMGR_CONSUL_ADDR=HOST:PORT"},
		},
		{
			name:    "several",
			args:    []string{"config"},
			file:    "REBOOTMGR_COOLDOWNS=1h\n",
			environ: map[string]string{"REBOOTMGR_STAYGREEN": "5m"},
			says:    []string{"2 unknown settings", "FILE:1: REBOOTMGR_COOLDOWNS", "environment: REBOOTMGR_STAYGREEN", "REBOOTMGR_STAY_GREEN?"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := map[string]string{}
			for k, v := range tt.environ {
				environ[k] = v
			}
			file := filepath.Join(t.TempDir(), "rebootmgr")
			if tt.file != "" {
				writeFile(t, file, tt.file)
				environ["REBOOTMGR_CONFIG"] = file
			}
			r := runCLI(t, environ, tt.args...)
			if r.code != exitUsage || r.stdout != "" {
				t.Fatalf("want exit %d and nothing on stdout, got %s", exitUsage, r)
			}
			last := lastLine(r.stderr)
			if !strings.HasPrefix(last, "rebootmgr "+tt.args[0]+": usage: ") {
				t.Fatalf("the last line does not say why: %q", last)
			}
			for _, s := range tt.says {
				if s = strings.ReplaceAll(s, "FILE", file); !strings.Contains(last, s) {
					t.Errorf("%q does not say %q", last, s)
				}
			}
		})
	}
}

// TestKnownSettings: what is not a typo. The file is shared by every command: a setting of the
// daemon or of the FleetLock server is known to config and status. The names rebootmgr gives its
// tasks, REBOOTMGR_CONFIG, and the names the package's kernel hook and the build scripts read are
// known too. A command's help is shown whatever the file holds.
func TestKnownSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rebootmgr")
	writeFile(t, file, "REBOOTMGR_ENABLED=false\nREBOOTMGR_INTERVAL=1m\nREBOOTMGR_LISTEN=:8470\nREBOOTMGR_JSON=false\nREBOOTMGR_PER_ZONE=0\nNOMAD_ADDR=http://127.0.0.1:4646\n")
	environ := map[string]string{
		"REBOOTMGR_CONFIG": file, "REBOOTMGR_PHASE": "pre", "REBOOTMGR_NODE": "n1", "REBOOTMGR_DRY_RUN": "0",
		"REBOOTMGR_CACHE": "/tmp/cache", "REBOOTMGR_BIN": "/usr/bin/rebootmgr", "REBOOTMGR_DEFAULTS": "/etc/default/rebootmgr",
	}
	r := runCLI(t, environ, "config")
	if r.code != 0 || !strings.Contains(r.stdout, "--interval") || !strings.Contains(r.stdout, "("+file+")") {
		t.Fatalf("config refused known settings: %s", r)
	}
	r = runCLI(t, environ, "status", "--consul-addr", "127.0.0.1:1")
	if r.code == exitUsage || strings.Contains(r.stderr, "unknown setting") {
		t.Fatalf("status refused known settings: %s", r)
	}
	writeFile(t, file, "REBOOTMGR_REBOOT_WINDOWS=Mon-Fri 02:00-05:00\n")
	if r := runCLI(t, environ, "check", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-reboot-window") {
		t.Fatalf("check -h with a typo in the file: %s", r)
	}
}

// TestTaskEnvironmentIsKnown: every REBOOTMGR_* name a task gets from rebootmgr is one that
// rebootmgr knows, so that a task may run rebootmgr itself.
func TestTaskEnvironmentIsKnown(t *testing.T) {
	n := dev(t)
	n.agent.RegisterService("galera", []string{"rebootmgr"}, "passing")
	seen := filepath.Join(n.dir, "task-env")
	n.task("pre", "10-env", "env | grep '^REBOOTMGR_' > "+seen)
	n.expect(n.run("reboot", "--dry-run"), 0)
	data, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, value, _ := strings.Cut(line, "=")
		environ[name] = value
	}
	for _, name := range []string{"REBOOTMGR_NODE", "REBOOTMGR_PHASE", "REBOOTMGR_DRY_RUN"} {
		if _, ok := environ[name]; !ok {
			t.Fatalf("the task did not get %s: %v", name, environ)
		}
	}
	environ["REBOOTMGR_CONFIG"] = ""
	if r := runCLI(t, environ, "config"); r.code != 0 {
		t.Fatalf("rebootmgr run with a task's environment: %s", r)
	}
}

// TestScriptsNameKnownSettings: every REBOOTMGR_* name the repository's scripts, CI and
// deploy files read or set is one rebootmgr knows: a name read only by a script, and exported
// around rebootmgr, must not make rebootmgr refuse to run.
func TestScriptsNameKnownSettings(t *testing.T) {
	flags, others := flagNames(), otherNames()
	name := regexp.MustCompile(`\bREBOOTMGR_[A-Z][A-Z0-9_]*[A-Z0-9]`)
	for _, dir := range []string{"../../scripts", "../../.ci", "../../deploy"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".8") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, n := range name.FindAllString(string(data), -1) {
				if !flags[n] && others[n] == "" && retiredNames()[n] == "" {
					t.Errorf("%s names %s, which rebootmgr does not know: it would refuse to run with it set", path, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
