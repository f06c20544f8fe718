package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
