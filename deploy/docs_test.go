package deploy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// paragraphs splits a Debian control-style file (debian/copyright, a changelog's fields) into
// its paragraphs, each a map of field to value (continuation lines joined by newlines).
func paragraphs(t *testing.T, data string) []map[string]string {
	t.Helper()
	var out []map[string]string
	var cur map[string]string
	last := ""
	for i, line := range strings.Split(data, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			if cur != nil {
				out = append(out, cur)
			}
			cur, last = nil, ""
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				t.Fatalf("line %d: a continuation line without a field: %q", i+1, line)
			}
			cur[last] += "\n" + strings.TrimSpace(line)
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("line %d: not a field: %q", i+1, line)
			}
			if cur == nil {
				cur = map[string]string{}
			}
			if _, dup := cur[name]; dup {
				t.Fatalf("line %d: field %s twice in a paragraph", i+1, name)
			}
			cur[name], last = strings.TrimSpace(value), name
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// testCopyright: /usr/share/doc/rebootmgr/copyright is in Debian's machine-readable format,
// says rebootmgr is Apache-2.0 by its authors, and names every Go module linked into the
// packaged binary, each under a license whose text it holds.
func testCopyright(t *testing.T, _, root string) {
	data, err := os.ReadFile(filepath.Join(root, "usr/share/doc/rebootmgr/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	ps := paragraphs(t, string(data))
	if len(ps) < 3 || ps[0]["Format"] != "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" || ps[0]["Upstream-Name"] != "rebootmgr" {
		t.Fatalf("no header paragraph in the copyright format: %v", ps[0])
	}
	files := map[string]map[string]string{}
	texts := map[string]bool{}
	for _, p := range ps[1:] {
		switch {
		case p["Files"] != "":
			if p["Copyright"] == "" || p["License"] == "" {
				t.Errorf("Files: %s lacks its Copyright or License", p["Files"])
			}
			files[p["Files"]] = p
		case p["License"] != "":
			name, text, _ := strings.Cut(p["License"], "\n")
			if strings.TrimSpace(text) == "" {
				t.Errorf("License: %s has no text", name)
			}
			texts[name] = true
		default:
			t.Errorf("a paragraph that is neither Files nor License: %v", p)
		}
	}
	own := files["*"]
	if own["Copyright"] != "2026 The rebootmgr Authors" || own["License"] != "Apache-2.0" {
		t.Errorf("Files: * says %q under %q, want 2026 The rebootmgr Authors under Apache-2.0", own["Copyright"], own["License"])
	}
	for _, p := range files {
		if !texts[p["License"]] {
			t.Errorf("Files: %s is under %s, whose text the file lacks", p["Files"], p["License"])
		}
	}
	out, err := exec.Command("go", "version", "-m", filepath.Join(root, "usr/bin/rebootmgr")).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	deps := regexp.MustCompile(`(?m)^\s+dep\s+(\S+)`).FindAllStringSubmatch(string(out), -1)
	if len(deps) == 0 {
		t.Fatalf("no modules in the binary's build information:\n%s", out)
	}
	for _, d := range deps {
		if files[d[1]+"/*"] == nil {
			t.Errorf("the binary links %s, which the copyright file does not name (Files: %s/*)", d[1], d[1])
		}
	}
}

// testChangelog: the package carries the changelog lintian expects of a native package,
// changelog.gz, whose newest entry is the package's version by its maintainer, above the
// releases before it.
func testChangelog(t *testing.T, deb, root string) {
	if _, err := exec.LookPath("dpkg-parsechangelog"); err != nil {
		t.Fatalf("dpkg-parsechangelog is needed to read the changelog (Debian: apt-get install dpkg-dev): %v", err)
	}
	f, err := os.Open(filepath.Join(root, "usr/share/doc/rebootmgr/changelog.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) map[string]string {
		t.Helper()
		cmd := exec.Command("dpkg-parsechangelog", append([]string{"-l-"}, args...)...)
		cmd.Stdin = bytes.NewReader(text)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("dpkg-parsechangelog %v: %v\n%s\n%s", args, err, stderr.String(), text)
		}
		return paragraphs(t, string(out))[0]
	}
	newest := parse()
	if newest["Version"] != testVersion {
		t.Errorf("the newest entry is %s, want the package's version %s", newest["Version"], testVersion)
	}
	if want := strings.TrimSpace(dpkgDeb(t, "-f", deb, "Maintainer")); newest["Maintainer"] != want {
		t.Errorf("the newest entry is by %q, the package's maintainer is %q", newest["Maintainer"], want)
	}
	var versions []string
	for _, line := range strings.Split(string(text), "\n") {
		if m := regexp.MustCompile(`^rebootmgr \(([^)]+)\)`).FindStringSubmatch(line); m != nil {
			versions = append(versions, m[1])
		}
	}
	if !slices.Contains(versions, "0.1.0") {
		t.Errorf("the changelog lacks the first release, 0.1.0: %v", versions)
	}
	for i := 1; i < len(versions); i++ {
		if err := exec.Command("dpkg", "--compare-versions", versions[i-1], "gt", versions[i]).Run(); err != nil {
			t.Errorf("entry %s is not newer than the one below it, %s", versions[i-1], versions[i])
		}
	}
}

// TestLicense: LICENSE is the Apache License 2.0, whole (Debian ships the same text).
func TestLicense(t *testing.T) {
	data, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Apache License", "Version 2.0, January 2004", "END OF TERMS AND CONDITIONS"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
	if debian, err := os.ReadFile("/usr/share/common-licenses/Apache-2.0"); err == nil && !bytes.Equal(data, debian) {
		t.Error("LICENSE differs from /usr/share/common-licenses/Apache-2.0")
	}
}

// TestVersionFromChangelog: scripts/version makes the package version from what the repository
// holds, the changelog's top entry and the commits after the one that wrote it, never from tags
// (a clone does not carry them): a clone without tags gets the version its origin gets. Versions
// sort as the commits follow each other: a release, commits after it, a next version on its way,
// its release. An entry that makes no Debian version fails the build.
func TestVersionFromChangelog(t *testing.T) {
	script, err := filepath.Abs("../scripts/version")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	gitIn := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "tag.gpgSign=false", "-c", "commit.gpgSign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git := func(args ...string) string { t.Helper(); return gitIn(repo, args...) }
	versionIn := func(dir string) (string, error) {
		cmd := exec.Command(script)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	changelog := filepath.Join(repo, "deploy", "debian", "changelog")
	if err := os.MkdirAll(filepath.Dir(changelog), 0o755); err != nil {
		t.Fatal(err)
	}
	entry := func(version, distribution string) string {
		return fmt.Sprintf("rebootmgr (%s) %s; urgency=medium\n\n  * A change.\n\n -- t <t@example.com>  Thu, 26 Nov 2026 12:00:00 +0000\n\n", version, distribution)
	}
	write := func(text string) func() string {
		return func() string {
			if err := os.WriteFile(changelog, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			git("add", "-A")
			git("commit", "-q", "-m", "the changelog")
			return git("rev-parse", "--short", "HEAD")
		}
	}
	commit := func() string {
		git("commit", "-q", "--allow-empty", "-m", "a change")
		return git("rev-parse", "--short", "HEAD")
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "start")
	released := entry("0.1.0", "unstable")
	steps := []struct {
		name string
		do   func() string // returns what %s in want stands for
		want string
	}{
		{"the first release", write(released), "0.1.0"},
		{"a commit after it", commit, "0.1.0+1.g%s"},
		{"two commits after it", commit, "0.1.0+2.g%s"},
		{"a tag that says otherwise", func() string { git("tag", "v9.9.9"); return git("rev-parse", "--short", "HEAD") }, "0.1.0+2.g%s"},
		{"an older entry's fix", write(strings.Replace(released, "A change.", "A change, fixed.", 1)), "0.1.0+3.g%s"},
		{"the next version on its way", write(entry("0.2.0", "UNRELEASED") + released), "0.2.0~0.g%s"},
		{"a commit on its way", commit, "0.2.0~1.g%s"},
		{"its release", write(entry("0.2.0", "unstable") + released), "0.2.0"},
		{"a commit after that", commit, "0.2.0+1.g%s"},
	}
	var versions []string
	for _, st := range steps {
		want := strings.ReplaceAll(st.want, "%s", st.do())
		got, err := versionIn(repo)
		if err != nil || got != want {
			t.Fatalf("%s: scripts/version = %q (%v), want %q", st.name, got, err, want)
		}
		versions = append(versions, got)
	}
	for i := 1; i < len(versions); i++ {
		if err := exec.Command("dpkg", "--compare-versions", versions[i], "ge", versions[i-1]).Run(); err != nil {
			t.Errorf("%s sorts before %s", versions[i], versions[i-1])
		}
	}
	clone := filepath.Join(t.TempDir(), "clone")
	gitIn(repo, "clone", "-q", "--no-tags", repo, clone)
	if got, err := versionIn(clone); err != nil || got != versions[len(versions)-1] {
		t.Errorf("a clone without tags: scripts/version = %q (%v), want %q", got, err, versions[len(versions)-1])
	}
	write(entry("1.0_beta", "unstable"))()
	if got, err := versionIn(repo); err == nil {
		t.Errorf("the entry 1.0_beta made version %q, want an error", got)
	}
}

// TestVersionWithoutGit: in a tree without git (an export), the version is the changelog's top
// entry's.
func TestVersionWithoutGit(t *testing.T) {
	exported := t.TempDir()
	if err := os.MkdirAll(filepath.Join(exported, "deploy", "debian"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(exported, "deploy", "debian", "changelog"), []byte("rebootmgr (0.2.0) unstable; urgency=medium\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without git, the script finds the changelog beside itself: a copy of it in the tree.
	if err := os.MkdirAll(filepath.Join(exported, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../scripts/version")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(exported, "scripts", "version"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(exported, "scripts", "version"))
	cmd.Dir = exported
	cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(exported))
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "0.2.0" {
		t.Errorf("an exported tree: scripts/version = %q (%v), want 0.2.0", out, err)
	}
}
