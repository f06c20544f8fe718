package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The documentation: README.md, the landing page, and docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{"../README.md"}, docs...)
}

// doc is a Markdown file as the link checks see it.
type doc struct {
	path  string
	lines []string // its lines, those of fenced code blocks blanked
	slugs map[string]bool
}

func readDoc(t *testing.T, path string) doc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := doc{path: path, slugs: map[string]bool{}}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			line = ""
		}
		if fenced {
			line = ""
		}
		d.lines = append(d.lines, line)
		if m := headingRE.FindStringSubmatch(line); m != nil {
			s := slug(m[1])
			if n := seen[s]; n > 0 {
				d.slugs[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				d.slugs[s] = true
			}
			seen[s]++
		}
	}
	return d
}

var (
	headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	linkRE    = regexp.MustCompile(`\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)\)`)
	inlineRE  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// slug is the anchor GitHub gives a heading: its text as shown, in lower case, without
// punctuation, spaces as dashes.
func slug(heading string) string {
	text := inlineRE.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocLinks: every relative link in README.md and docs/*.md leads to a file of the
// repository, and every anchor to a heading of its file; every file of docs/ is linked from
// README.md, so that a reader finds it.
func TestDocLinks(t *testing.T) {
	docs := map[string]doc{}
	for _, path := range docFiles(t) {
		docs[filepath.Clean(path)] = readDoc(t, path)
	}
	linked := map[string]bool{}
	for path, d := range docs {
		for i, line := range d.lines {
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[2]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				if err := checkLink(docs, path, target); err != nil {
					t.Errorf("%s:%d: [%s](%s): %v", path, i+1, m[1], target, err)
				}
				file, _, _ := strings.Cut(target, "#")
				if path == filepath.Clean("../README.md") && file != "" {
					linked[filepath.Clean(filepath.Join("..", file))] = true
				}
			}
		}
	}
	for path := range docs {
		if strings.HasPrefix(path, filepath.Clean("../docs")) && !linked[path] {
			t.Errorf("README.md does not link to %s", strings.TrimPrefix(path, "../"))
		}
	}
}

// checkLink says why target, linked from the doc at from, does not resolve.
func checkLink(docs map[string]doc, from, target string) error {
	file, anchor, hasAnchor := strings.Cut(target, "#")
	dest := from
	if file != "" {
		dest = filepath.Clean(filepath.Join(filepath.Dir(from), file))
		if !strings.HasPrefix(dest, "..") || strings.HasPrefix(dest, "../..") {
			return fmt.Errorf("leads out of the repository")
		}
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("no such file: %s", dest)
		}
	}
	if !hasAnchor {
		return nil
	}
	d, ok := docs[dest]
	if !ok {
		return fmt.Errorf("an anchor into %s, which is not a doc checked here", dest)
	}
	if !d.slugs[anchor] {
		return fmt.Errorf("%s has no heading #%s", dest, anchor)
	}
	return nil
}

// TestSlug: anchors as GitHub makes them, for the kinds of headings the docs have.
func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Why is node X not rebooting?":        "why-is-node-x-not-rebooting",
		"Health: services tagged `rebootmgr`": "health-services-tagged-rebootmgr",
		"`--reboot-window`":                   "--reboot-window",
		"Upgrading from 0.1.0":                "upgrading-from-010",
		"Zincati's side":                      "zincatis-side",
		"A task failed (post-boot failing)":   "a-task-failed-post-boot-failing",
		"[design](design.md) and more":        "design-and-more",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}
