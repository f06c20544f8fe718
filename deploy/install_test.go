package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// testInstall installs the package with dpkg into a throw-away root (dpkg --root, its database
// and log in that root too) and follows it through its life: installed, configured by the
// operator and installed again, removed, purged. dpkg runs the maintainer scripts chrooted into
// the root, as it would on a node, so the root gets a shell and the few tools the scripts use,
// copied from this system; there is no systemd and no deb-systemd-helper in it, so the scripts
// do what they do on a machine without systemd, and nothing outside the root is touched. That
// takes root (chroot): as any other user the test is skipped, and testMaintainerScripts still
// runs the scripts with stand-ins.
func testInstall(t *testing.T, deb, _ string) {
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root runs the maintainer scripts chrooted into the throw-away root, which takes root")
	}
	dir := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log", "dev"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mknod(filepath.Join(dir, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Fatalf("mknod dev/null in the throw-away root: %v", err)
	}
	chrootTools(t, dir, "sh", "sed", "tail", "tr", "cat")

	dpkg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("dpkg", append([]string{"--root=" + dir, "--log=" + filepath.Join(dir, "var/log/dpkg.log")}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("dpkg %s complained:\n%s", strings.Join(args, " "), stderr.String())
		}
		return string(out)
	}
	query := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("dpkg-query", append([]string{"--admindir=" + filepath.Join(dir, "var/lib/dpkg")}, args...)...).Output()
		if err != nil {
			t.Fatalf("dpkg-query %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	exists := func(path string) bool {
		_, err := os.Lstat(filepath.Join(dir, path))
		return err == nil
	}
	const nextSteps = "Set REBOOTMGR_ENABLED=true in /etc/default/rebootmgr, then: systemctl restart rebootmgr"
	defaults := filepath.Join(dir, "etc/default/rebootmgr")
	hook := func() (wrote bool) {
		t.Helper()
		request := filepath.Join(dir, "run/reboot_required")
		os.Remove(request)
		// The hook's own path and that of the binary it looks for, in the root; the request
		// goes into the root as well, whatever the hook reads.
		cmd := exec.Command(filepath.Join(dir, "etc/kernel/postinst.d/zz-rebootmgr"), "6.1.0-99-amd64")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "REBOOTMGR_BIN=" + filepath.Join(dir, "usr/bin/rebootmgr"),
			"REBOOTMGR_DEFAULTS=" + defaults, "REBOOTMGR_REBOOT_REQUIRED_FILE=" + request}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kernel hook: %v\n%s", err, out)
		}
		return exists("run/reboot_required")
	}

	// Installed: every file in place, the conffiles registered, the node not enabled, and the
	// operator told what to do next.
	out := dpkg("--install", deb)
	if !strings.Contains(out, nextSteps) {
		t.Errorf("the install does not say what to do next:\n%s", out)
	}
	if got := query("--show", "--showformat=${Status} ${Version}", "rebootmgr"); got != "install ok installed "+testVersion {
		t.Fatalf("after dpkg --install: %q", got)
	}
	files := strings.Fields(query("--listfiles", "rebootmgr"))
	for _, want := range []string{"/usr/bin/rebootmgr", "/usr/lib/systemd/system/rebootmgr.service", "/etc/default/rebootmgr",
		"/usr/lib/systemd/system/rebootmgr-fleetlock.service", "/etc/default/rebootmgr-fleetlock", "/usr/lib/systemd/system/rebootmgr-web.service",
		"/etc/kernel/postinst.d/zz-rebootmgr", "/etc/rebootmgr/pre_boot_tasks", "/usr/share/doc/rebootmgr/copyright",
		"/usr/share/doc/rebootmgr/changelog.gz", "/usr/share/man/man8/rebootmgr.8.gz"} {
		if !slices.Contains(files, want) {
			t.Errorf("dpkg does not list %s as the package's", want)
		}
	}
	for _, f := range files {
		if !exists(f) {
			t.Errorf("%s is listed but not installed", f)
		}
	}
	conffiles := regexp.MustCompile(`(?m)^ (\S+) [0-9a-f]{32}$`).FindAllStringSubmatch(query("--show", "--showformat=${Conffiles}\n", "rebootmgr"), -1)
	var names []string
	for _, c := range conffiles {
		names = append(names, c[1])
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"/etc/default/rebootmgr", "/etc/default/rebootmgr-fleetlock", "/etc/kernel/postinst.d/zz-rebootmgr"}) {
		t.Errorf("conffiles %v", conffiles)
	}
	shipped, err := os.ReadFile(defaults)
	if err != nil || !regexp.MustCompile(`(?m)^REBOOTMGR_ENABLED=false$`).Match(shipped) {
		t.Fatalf("/etc/default/rebootmgr does not hold REBOOTMGR_ENABLED=false: %v", err)
	}
	if !hook() {
		t.Error("the installed kernel hook did not ask for a reboot")
	}

	// The operator enables the node; the package installed again keeps that and says nothing.
	enabled := strings.Replace(string(shipped), "REBOOTMGR_ENABLED=false", "REBOOTMGR_ENABLED=true", 1)
	if err := os.WriteFile(defaults, []byte(enabled), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := dpkg("--install", deb); strings.Contains(out, nextSteps) {
		t.Errorf("installed again on an enabled node, it still says to enable it:\n%s", out)
	}
	if got, _ := os.ReadFile(defaults); string(got) != enabled {
		t.Error("installing again lost the operator's /etc/default/rebootmgr")
	}

	// Removed: the binary goes, the conffiles stay until purge, and the hook asks for nothing.
	dpkg("--remove", "rebootmgr")
	if exists("usr/bin/rebootmgr") || !exists("etc/default/rebootmgr") || !exists("etc/kernel/postinst.d/zz-rebootmgr") {
		t.Fatalf("after dpkg --remove: binary %v, defaults %v, hook %v", exists("usr/bin/rebootmgr"), exists("etc/default/rebootmgr"), exists("etc/kernel/postinst.d/zz-rebootmgr"))
	}
	if hook() {
		t.Error("the kernel hook of a removed package asked for a reboot")
	}

	// Purged: nothing of it is left.
	dpkg("--purge", "rebootmgr")
	for _, f := range []string{"etc/default/rebootmgr", "etc/default/rebootmgr-fleetlock", "etc/kernel/postinst.d/zz-rebootmgr", "etc/rebootmgr", "usr/share/doc/rebootmgr"} {
		if exists(f) {
			t.Errorf("%s is left after dpkg --purge", f)
		}
	}
}

// chrootTools copies tools, and the libraries they load, from this system into root.
func chrootTools(t *testing.T, root string, tools ...string) {
	t.Helper()
	copyFile := func(src, dst string) {
		t.Helper()
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lib := regexp.MustCompile(`(/\S+)`)
	for _, tool := range tools {
		path, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		copyFile(path, filepath.Join(root, "bin", tool))
		out, err := exec.Command("ldd", path).Output()
		if err != nil {
			continue // static
		}
		for _, m := range lib.FindAllStringSubmatch(string(out), -1) {
			if real, err := filepath.EvalSymlinks(m[1]); err == nil {
				copyFile(real, filepath.Join(root, m[1]))
			}
		}
	}
}
