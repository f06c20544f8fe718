// Package deploy holds what goes onto a node besides the binary: the systemd unit, the defaults
// file, the kernel hook, the ACL policies, the examples and the Debian package made of them.
// Its tests build the package and look inside it.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/internal/sdtest"
)

const testVersion = "1.2.3~test"

// TestDebianPackage builds the package once (scripts/deb, as make deb does) and looks inside it.
func TestDebianPackage(t *testing.T) {
	deb, root := buildPackage(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, deb, root string)
	}{
		{"fields", testPackageFields},
		{"contents", testPackageContents},
		{"binary", testPackagedBinaryRuns},
		{"unit", testUnitVerifies},
		{"kernel hook", testKernelHook},
		{"maintainer scripts", testMaintainerScripts},
		{"defaults file", testDefaultsFileNamesEveryFlag},
		{"FleetLock server's defaults file", testFleetlockDefaultsFile},
		{"copyright", testCopyright},
		{"changelog", testChangelog},
		{"waits to be told", testInstalledDaemonWaits},
		{"install", testInstall},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, deb, root) })
	}
}

// buildPackage builds the package into a temporary directory and extracts its files.
func buildPackage(t *testing.T) (deb, root string) {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to build and inspect the package (Debian: apt-get install dpkg): %v", tool, err)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("../scripts/deb", dir)
	cmd.Env = append(os.Environ(), "VERSION="+testVersion)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/deb: %v\n%s", err, stderr.String())
	}
	deb = strings.TrimSpace(string(out))
	root = filepath.Join(dir, "root")
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	return deb, root
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).Output()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// testPackageFields: the control fields operators and apt see.
func testPackageFields(t *testing.T, deb, _ string) {
	if got := filepath.Base(deb); got != "rebootmgr_"+testVersion+"_"+goarch(t)+".deb" {
		t.Errorf("package file %s", got)
	}
	for field, want := range map[string]string{
		"Package":      "rebootmgr",
		"Version":      testVersion,
		"Architecture": goarch(t),
		"Section":      "admin",
		"Recommends":   "consul",
	} {
		if got := strings.TrimSpace(dpkgDeb(t, "-f", deb, field)); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	conffiles := strings.Fields(dpkgDeb(t, "-I", deb, "conffiles"))
	want := []string{"/etc/default/rebootmgr", "/etc/default/rebootmgr-fleetlock", "/etc/kernel/postinst.d/zz-rebootmgr"}
	slices.Sort(conffiles)
	if !slices.Equal(conffiles, want) {
		t.Errorf("conffiles %v, want %v (an operator's edits must survive upgrades)", conffiles, want)
	}
}

func goarch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// testPackageContents: every path the package installs, with its mode and owner.
func testPackageContents(t *testing.T, deb, _ string) {
	type entry struct{ mode, owner string }
	got := map[string]entry{}
	sc := bufio.NewScanner(strings.NewReader(dpkgDeb(t, "-c", deb)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		got[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = entry{f[0], f[1]}
	}
	root := entry{owner: "root/root"}
	want := map[string]string{
		"/usr/bin/rebootmgr":                                                     "-rwxr-xr-x",
		"/usr/lib/systemd/system/rebootmgr.service":                              "-rw-r--r--",
		"/etc/default/rebootmgr":                                                 "-rw-r--r--",
		"/usr/lib/systemd/system/rebootmgr-fleetlock.service":                    "-rw-r--r--",
		"/usr/lib/systemd/system/rebootmgr-web.service":                          "-rw-r--r--",
		"/etc/default/rebootmgr-fleetlock":                                       "-rw-r--r--",
		"/etc/kernel/postinst.d/zz-rebootmgr":                                    "-rwxr-xr-x",
		"/etc/rebootmgr":                                                         "drwxr-xr-x",
		"/etc/rebootmgr/pre_boot_tasks":                                          "drwxr-xr-x",
		"/etc/rebootmgr/post_boot_tasks":                                         "drwxr-xr-x",
		"/usr/share/rebootmgr/acl/rebootmgr-daemon.hcl":                          "-rw-r--r--",
		"/usr/share/rebootmgr/acl/rebootmgr-operator.hcl":                        "-rw-r--r--",
		"/usr/share/man/man8/rebootmgr.8.gz":                                     "-rw-r--r--",
		"/usr/share/bash-completion/completions/rebootmgr":                       "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_rebootmgr":                           "-rw-r--r--",
		"/usr/share/doc/rebootmgr/README.md.gz":                                  "-rw-r--r--",
		"/usr/share/doc/rebootmgr/docs/operations.md.gz":                         "-rw-r--r--",
		"/usr/share/doc/rebootmgr/docs/configuration.md.gz":                      "-rw-r--r--",
		"/usr/share/doc/rebootmgr/copyright":                                     "-rw-r--r--",
		"/usr/share/doc/rebootmgr/changelog.gz":                                  "-rw-r--r--",
		"/usr/share/doc/rebootmgr/examples/checks/galera":                        "-rwxr-xr-x",
		"/usr/share/doc/rebootmgr/examples/consul.d/gateway.json":                "-rw-r--r--",
		"/usr/share/doc/rebootmgr/examples/pre_boot_tasks/50-openstack-evacuate": "-rwxr-xr-x",
		"/usr/share/doc/rebootmgr/examples/post_boot_tasks/50-openstack-enable":  "-rwxr-xr-x",
	}
	for path, mode := range want {
		e, ok := got[path]
		if !ok {
			t.Errorf("the package lacks %s", path)
			continue
		}
		if e.mode != mode || e.owner != root.owner {
			t.Errorf("%s: %s %s, want %s %s", path, e.mode, e.owner, mode, root.owner)
		}
	}
	for path, e := range got {
		if e.owner != root.owner {
			t.Errorf("%s is owned by %s, not root", path, e.owner)
		}
		if strings.Contains(path, "_test.go") {
			t.Errorf("the package ships a test: %s", path)
		}
		// Tasks run as root: nothing rebootmgr reads may be writable by others.
		if len(e.mode) == 10 && (e.mode[5] == 'w' || e.mode[8] == 'w') {
			t.Errorf("%s is writable by group or others: %s", path, e.mode)
		}
	}
}

// testPackagedBinaryRuns: the binary in the package runs, and is this version.
func testPackagedBinaryRuns(t *testing.T, _, root string) {
	out, err := exec.Command(filepath.Join(root, "usr/bin/rebootmgr"), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), testVersion) {
		t.Fatalf("rebootmgr version: %v: %s", err, out)
	}
}

// testUnitVerifies runs systemd-analyze verify on the packaged units, in a root holding the
// package's files and the system's targets, so that ExecStart is checked against the packaged
// binary. Any complaint fails the test, warnings too.
func testUnitVerifies(t *testing.T, _, root string) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze is needed to verify the unit (Debian: apt-get install systemd): %v", err)
	}
	units := filepath.Join(root, "usr/lib/systemd/system")
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		targets, _ := filepath.Glob(filepath.Join(dir, "*.target"))
		for _, target := range targets {
			data, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(units, filepath.Base(target)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer func() {
		targets, _ := filepath.Glob(filepath.Join(units, "*.target"))
		for _, target := range targets {
			os.Remove(target)
		}
	}()
	for _, name := range []string{"rebootmgr.service", "rebootmgr-fleetlock.service", "rebootmgr-web.service"} {
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, "/usr/lib/systemd/system/"+name).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
		// A configuration error (exit 64) does not restart in a loop.
		unit, err := os.ReadFile(filepath.Join(units, name))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^RestartPreventExitStatus=64$`).Match(unit) {
			t.Errorf("%s restarts on a usage error (exit 64): no RestartPreventExitStatus=64", name)
		}
	}
}

// testKernelHook runs the packaged kernel hook as the kernel's packages do: it asks for a reboot
// through the first reboot-required file the daemon is configured with; once the package is
// removed (its binary gone, the hook left as a conffile) it asks nothing.
func testKernelHook(t *testing.T, _, root string) {
	hook := filepath.Join(root, "etc/kernel/postinst.d/zz-rebootmgr")
	tests := []struct {
		name     string
		env      string // REBOOTMGR_REBOOT_REQUIRED_FILE, %s the test's directory
		defaults string // the defaults file, %s the test's directory
		want     string // the file written ("": none may be)
		removed  bool   // the package is removed: no binary
	}{
		{"from the defaults file",
			"", "#REBOOTMGR_REBOOT_REQUIRED_FILE=/nowhere\nREBOOTMGR_REBOOT_REQUIRED_FILE=\"%s/a:%s/b\"\n", "a", false},
		{"from the environment, before the defaults file",
			"%s/env", "REBOOTMGR_REBOOT_REQUIRED_FILE=%s/a\n", "env", false},
		{"in a directory that does not exist yet",
			"%s/run/deep/reboot_required", "", "run/deep/reboot_required", false},
		{"the package removed",
			"%s/run/reboot_required", "REBOOTMGR_REBOOT_REQUIRED_FILE=%s/a\n", "", true},
		{"the package removed, no settings",
			"%s/run/reboot_required", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fill := func(s string) string { return strings.ReplaceAll(s, "%s", dir) }
			defaults := filepath.Join(dir, "defaults")
			if err := os.WriteFile(defaults, []byte(fill(tt.defaults)), 0o644); err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(root, "usr/bin/rebootmgr")
			if tt.removed {
				bin = filepath.Join(dir, "usr/bin/rebootmgr")
			}
			cmd := exec.Command(hook, "6.1.0-99-amd64", "/boot/vmlinuz-6.1.0-99-amd64")
			cmd.Env = []string{"PATH=/usr/bin:/bin", "REBOOTMGR_DEFAULTS=" + defaults, "REBOOTMGR_BIN=" + bin}
			if tt.env != "" {
				cmd.Env = append(cmd.Env, "REBOOTMGR_REBOOT_REQUIRED_FILE="+fill(tt.env))
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("hook: %v\n%s", err, out)
			}
			if tt.removed {
				entries, _ := os.ReadDir(dir)
				if len(entries) != 1 || len(out) != 0 {
					t.Fatalf("the hook of a removed package wrote %v, said %q", entries, out)
				}
				return
			}
			data, err := os.ReadFile(filepath.Join(dir, tt.want))
			if err != nil {
				t.Fatalf("the hook did not write %s: %v", tt.want, err)
			}
			if !strings.Contains(string(data), "kernel 6.1.0-99-amd64 installed") {
				t.Errorf("%s holds %q", tt.want, data)
			}
		})
	}
}

// testMaintainerScripts runs the package's scripts with stand-ins for deb-systemd-helper,
// deb-systemd-invoke and systemctl that record what they are asked: a new install enables the
// service and starts nothing; an operator's disable survives an upgrade; a purge forgets it.
// While /etc/default/rebootmgr (under DPKG_ROOT) does not enable the node, postinst says what
// to do next.
func testMaintainerScripts(t *testing.T, deb, _ string) {
	control := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", deb, control).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
	}
	tests := []struct {
		name       string
		script     string
		args       []string
		wasEnabled bool
		want       []string // calls, in order; "start" and "restart" appear only when running under systemd
		// defaults is /etc/default/rebootmgr ("-": the shipped one); nextSteps says whether the
		// script tells the operator how to enable the node.
		defaults  string
		nextSteps bool
	}{
		{"new install", "postinst", []string{"configure", ""}, true,
			[]string{"deb-systemd-helper unmask rebootmgr.service", "deb-systemd-helper --quiet was-enabled rebootmgr.service", "deb-systemd-helper enable rebootmgr.service",
				"deb-systemd-helper unmask rebootmgr-fleetlock.service", "deb-systemd-helper update-state rebootmgr-fleetlock.service",
				"deb-systemd-helper unmask rebootmgr-web.service", "deb-systemd-helper update-state rebootmgr-web.service"},
			"-", true},
		{"upgrade, disabled by the operator", "postinst", []string{"configure", "1.0.0"}, false,
			[]string{"deb-systemd-helper unmask rebootmgr.service", "deb-systemd-helper --quiet was-enabled rebootmgr.service", "deb-systemd-helper update-state rebootmgr.service",
				"deb-systemd-helper unmask rebootmgr-fleetlock.service", "deb-systemd-helper update-state rebootmgr-fleetlock.service",
				"deb-systemd-helper unmask rebootmgr-web.service", "deb-systemd-helper update-state rebootmgr-web.service"},
			"REBOOTMGR_ENABLED=true\n", false},
		{"upgrade of a node not enabled yet", "postinst", []string{"configure", "1.0.0"}, true,
			[]string{"deb-systemd-helper unmask rebootmgr.service", "deb-systemd-helper --quiet was-enabled rebootmgr.service", "deb-systemd-helper enable rebootmgr.service",
				"deb-systemd-helper unmask rebootmgr-fleetlock.service", "deb-systemd-helper update-state rebootmgr-fleetlock.service",
				"deb-systemd-helper unmask rebootmgr-web.service", "deb-systemd-helper update-state rebootmgr-web.service"},
			"REBOOTMGR_ENABLED=true\nREBOOTMGR_ENABLED='false'\n", true},
		{"upgrade of an enabled node", "postinst", []string{"configure", "1.0.0"}, true,
			[]string{"deb-systemd-helper unmask rebootmgr.service", "deb-systemd-helper --quiet was-enabled rebootmgr.service", "deb-systemd-helper enable rebootmgr.service",
				"deb-systemd-helper unmask rebootmgr-fleetlock.service", "deb-systemd-helper update-state rebootmgr-fleetlock.service",
				"deb-systemd-helper unmask rebootmgr-web.service", "deb-systemd-helper update-state rebootmgr-web.service"},
			"# ours\nexport REBOOTMGR_ENABLED=\"true\"\n", false},
		{"remove", "postrm", []string{"remove"}, true,
			[]string{"deb-systemd-helper mask rebootmgr.service rebootmgr-fleetlock.service rebootmgr-web.service"}, "-", false},
		{"purge", "postrm", []string{"purge"}, true,
			[]string{"deb-systemd-helper purge rebootmgr.service rebootmgr-fleetlock.service rebootmgr-web.service", "deb-systemd-helper unmask rebootmgr.service rebootmgr-fleetlock.service rebootmgr-web.service"}, "-", false},
	}
	underSystemd := false
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		underSystemd = true
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := t.TempDir()
			calls := filepath.Join(bin, "calls")
			wasEnabled := "0"
			if !tt.wasEnabled {
				wasEnabled = "1"
			}
			for _, tool := range []string{"deb-systemd-helper", "deb-systemd-invoke", "systemctl"} {
				stub := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %s\ncase \"$*\" in *was-enabled*) exit %s ;; esac\n", tool, calls, wasEnabled)
				if err := os.WriteFile(filepath.Join(bin, tool), []byte(stub), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			dpkgRoot := t.TempDir()
			defaults := filepath.Join(dpkgRoot, "etc/default/rebootmgr")
			if err := os.MkdirAll(filepath.Dir(defaults), 0o755); err != nil {
				t.Fatal(err)
			}
			content := []byte(tt.defaults)
			if tt.defaults == "-" {
				var err error
				if content, err = os.ReadFile("rebootmgr.default"); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(defaults, content, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", append([]string{filepath.Join(control, tt.script)}, tt.args...)...)
			cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "DPKG_ROOT=" + dpkgRoot}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s%s", tt.script, tt.args, err, out, stderr.Bytes())
			}
			said := strings.Contains(string(out), "Set REBOOTMGR_ENABLED=true in /etc/default/rebootmgr, then: systemctl restart rebootmgr")
			if said != tt.nextSteps {
				t.Errorf("said what to do next: %v, want %v; output:\n%s", said, tt.nextSteps, out)
			}
			data, _ := os.ReadFile(calls)
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if line == "" {
					continue
				}
				if strings.Contains(line, " start") && !strings.Contains(line, "try-restart") {
					t.Errorf("%s started the service: %q", tt.name, line)
				}
				if !strings.HasPrefix(line, "systemctl") && !strings.HasPrefix(line, "deb-systemd-invoke") {
					got = append(got, line)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("calls %q, want %q", got, tt.want)
			}
			if !underSystemd && strings.Contains(string(data), "systemctl") {
				t.Errorf("systemctl called outside systemd: %s", data)
			}
		})
	}
}

// testInstalledDaemonWaits: the packaged daemon, with the packaged /etc/default/rebootmgr, does
// nothing until the operator enables it: it tells systemd so, and stops cleanly on SIGTERM. The
// Consul address is one where no agent answers: it must not ask.
func testInstalledDaemonWaits(t *testing.T, _, root string) {
	sd := sdtest.Listen(t)
	socket, dir := sd.Path, t.TempDir()
	defaults := filepath.Join(root, "etc/default/rebootmgr")
	cmd := exec.Command(filepath.Join(root, "usr/bin/rebootmgr"), "daemon", "--lock-file", filepath.Join(dir, "lock"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "NOTIFY_SOCKET=" + socket, "REBOOTMGR_CONFIG=" + defaults, "CONSUL_HTTP_ADDR=127.0.0.1:1"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	got := sd.Next(t, 30*time.Second)
	want := "READY=1\nSTATUS=not enabled: set REBOOTMGR_ENABLED=true in " + defaults + ", then systemctl restart rebootmgr"
	if got != want {
		t.Fatalf("told systemd %q, want %q\n%s", got, want, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("the daemon did not stop cleanly: %v\n%s", err, stderr.String())
	}
	exited <- nil
	if _, err := os.Stat(filepath.Join(dir, "lock")); err == nil {
		t.Error("a daemon that is not enabled took the node's lock file")
	}
}

var envSetting = regexp.MustCompile(`(?m)^#?(REBOOTMGR_[A-Z_]+)=`)

// testDefaultsFileNamesEveryFlag: the defaults file names a setting for every flag of the daemon
// (the flags stay the source of truth), and nothing that is not one.
func testDefaultsFileNamesEveryFlag(t *testing.T, _, root string) {
	// The daemon always looks for a request: --check-triggers is the one-shot command's.
	set := namesEveryFlag(t, root, "rebootmgr.default", "daemon", "REBOOTMGR_CHECK_TRIGGERS")
	// Every setting is commented out, but the one that keeps a new node from rebooting.
	if !slices.Equal(set, []string{"REBOOTMGR_ENABLED=false"}) {
		t.Errorf("the defaults file sets %q, want only REBOOTMGR_ENABLED=false", set)
	}
}

// testFleetlockDefaultsFile: the FleetLock server's file names a setting for every flag of
// rebootmgr fleetlock and sets none; the packaged binary reads it (as its unit has it do), and
// asks for the listen address it leaves out.
func testFleetlockDefaultsFile(t *testing.T, _, root string) {
	if set := namesEveryFlag(t, root, "rebootmgr-fleetlock.default", "fleetlock"); len(set) != 0 {
		t.Errorf("the FleetLock server's file sets %q, want nothing set", set)
	}
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/rebootmgr-fleetlock.service"))
	if err != nil || !strings.Contains(string(unit), "Environment=REBOOTMGR_CONFIG=/etc/default/rebootmgr-fleetlock\n") {
		t.Fatalf("the unit does not point REBOOTMGR_CONFIG at its own file: %v\n%s", err, unit)
	}
	cmd := exec.Command(filepath.Join(root, "usr/bin/rebootmgr"), "fleetlock")
	cmd.Env = []string{"REBOOTMGR_CONFIG=" + filepath.Join(root, "etc/default/rebootmgr-fleetlock")}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 64 || !strings.Contains(string(out), "--listen") {
		t.Fatalf("rebootmgr fleetlock with the shipped file: %v, want exit 64 asking for --listen:\n%s", err, out)
	}
}

// namesEveryFlag checks that the defaults file names a setting REBOOTMGR_<FLAG> for every flag of
// rebootmgr command (but those skipped), and nothing that is not one; it returns the lines that
// set something.
func namesEveryFlag(t *testing.T, root, file, command string, skip ...string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	help, _ := exec.Command(filepath.Join(root, "usr/bin/rebootmgr"), command, "--help").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(string(help), -1) {
		flags["REBOOTMGR_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
	}
	if len(flags) < 8 {
		t.Fatalf("read only %d flags from rebootmgr %s --help:\n%s", len(flags), command, help)
	}
	for _, f := range skip {
		delete(flags, f)
	}
	named := map[string]bool{}
	for _, m := range envSetting.FindAllStringSubmatch(string(data), -1) {
		named[m[1]] = true
		if !flags[m[1]] {
			t.Errorf("%s names %s, which is no flag of rebootmgr %s", file, m[1], command)
		}
	}
	for f := range flags {
		if !named[f] {
			t.Errorf("%s does not mention %s", file, f)
		}
	}
	return regexp.MustCompile(`(?m)^[A-Z_]+=.*$`).FindAllString(string(data), -1)
}
