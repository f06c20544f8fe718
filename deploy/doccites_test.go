package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// testSources is what the repository's test files define, by package directory (relative to
// the repository's root, "./cmd/rebootmgr"): the Test and Benchmark functions, and the text of
// the files, where the flags and variables a test reads are named.
type testSources struct {
	funcs map[string][]string
	text  map[string]string
}

var funcRE = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark)[A-Z0-9_]\w*)\(`)

func readTestSources(t *testing.T) testSources {
	t.Helper()
	src := testSources{funcs: map[string][]string{}, text: map[string]string{}}
	err := filepath.WalkDir("..", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := "./" + filepath.ToSlash(strings.TrimPrefix(filepath.Dir(path), "../"))
		for _, m := range funcRE.FindAllStringSubmatch(string(data), -1) {
			src.funcs[dir] = append(src.funcs[dir], m[1])
		}
		src.text[dir] += string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func (s testSources) defined(name string) bool {
	for _, names := range s.funcs {
		if slices.Contains(names, name) {
			return true
		}
	}
	return false
}

var (
	testNameRE = regexp.MustCompile(`\b(?:Test|Benchmark)[A-Z][A-Za-z0-9_]*`)
	goTestRE   = regexp.MustCompile("((?:[A-Z_]+=\\S+ )*go test [^`\\n]*)")
	codeSpanRE = regexp.MustCompile("`([^`\\n]+)`")
)

// TestDocCites: what the docs cite as proof can still be run. Every Test and Benchmark they
// name is defined; every `go test` command they give names packages that exist, a -run or
// -bench pattern that matches a function there, flags that go test or the package's tests
// define, and variables the package's tests read; every file of the repository they name in
// code exists.
func TestDocCites(t *testing.T) {
	src := readTestSources(t)
	for _, path := range docFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, name := range testNameRE.FindAllString(text, -1) {
			if !src.defined(name) {
				t.Errorf("%s names %s, which no test file defines", path, name)
			}
		}
		for _, cmd := range goTestRE.FindAllString(text, -1) {
			cmd = strings.TrimSpace(strings.TrimSuffix(cmd, "-->")) // the generated settings' marker
			for _, problem := range src.checkGoTest(cmd) {
				t.Errorf("%s: %s: %s", path, cmd, problem)
			}
		}
		for _, m := range codeSpanRE.FindAllStringSubmatch(text, -1) {
			if problem := repoPathProblem(m[1]); problem != "" {
				t.Errorf("%s: `%s`: %s", path, m[1], problem)
			}
		}
	}
}

// goTestFlags are go test's own flags the docs use, and whether each takes a value.
var goTestFlags = map[string]bool{"run": true, "bench": true, "benchtime": true, "timeout": true, "count": true, "race": false, "v": false, "short": false}

// checkGoTest says what in a `go test` command line would not run as the docs say.
func (s testSources) checkGoTest(cmd string) []string {
	var problems, pkgs []string
	patterns := map[string]string{}
	args := shellWords(cmd)
	var env []string
	for len(args) > 0 && strings.Contains(args[0], "=") {
		name, _, _ := strings.Cut(args[0], "=")
		env, args = append(env, name), args[1:]
	}
	args = args[2:] // go test
	var flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pkgs = append(pkgs, strings.TrimSuffix(a, "/"))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if takes, ok := goTestFlags[name]; ok && takes && !hasValue && i+1 < len(args) {
			value, i = args[i+1], i+1
		}
		if name == "run" || name == "bench" {
			patterns[name] = value
		}
		if _, ok := goTestFlags[name]; !ok {
			flags = append(flags, name)
		}
	}
	for _, p := range pkgs {
		if _, ok := s.funcs[p]; !ok {
			problems = append(problems, "no test package "+p)
		}
	}
	for kind, pattern := range patterns {
		if problem := s.matches(pkgs, kind, pattern); problem != "" {
			problems = append(problems, problem)
		}
	}
	for _, f := range flags {
		if !s.mention(pkgs, `"`+f+`"`) {
			problems = append(problems, "no test of "+strings.Join(pkgs, " ")+" defines the flag -"+f)
		}
	}
	for _, v := range env {
		if !strings.HasPrefix(v, "CONSUL_") && !s.mention(pkgs, `"`+v+`"`) {
			problems = append(problems, "no test of "+strings.Join(pkgs, " ")+" reads "+v)
		}
	}
	return problems
}

// matches says why pattern (of -run or -bench) matches no function of pkgs.
func (s testSources) matches(pkgs []string, kind, pattern string) string {
	if pattern == "^$" {
		return ""
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "-" + kind + " " + pattern + ": " + err.Error()
	}
	prefix := map[string]string{"run": "Test", "bench": "Benchmark"}[kind]
	for _, p := range pkgs {
		for _, name := range s.funcs[p] {
			if strings.HasPrefix(name, prefix) && re.MatchString(name) {
				return ""
			}
		}
	}
	return "-" + kind + " " + pattern + " matches no " + prefix + " function of " + strings.Join(pkgs, " ")
}

func (s testSources) mention(pkgs []string, text string) bool {
	for _, p := range pkgs {
		if strings.Contains(s.text[p], text) {
			return true
		}
	}
	return false
}

// shellWords splits a command line as the shell would, for the quoting the docs use.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	quote, inWord := rune(0), false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// repoPathProblem says why a code span that names a path in the repository (its first segment
// a directory of the repository's root) names nothing there; "" when it does, or is no such
// path. A glob must match something.
func repoPathProblem(span string) string {
	span = strings.TrimPrefix(span, "./")
	first, _, found := strings.Cut(span, "/")
	if !found || strings.ContainsAny(span, " <>{}$") || first == "" {
		return ""
	}
	if fi, err := os.Stat(filepath.Join("..", first)); err != nil || !fi.IsDir() {
		return ""
	}
	matches, err := filepath.Glob(filepath.Join("..", strings.TrimSuffix(span, "/")))
	if err != nil || len(matches) == 0 {
		return "no such file in the repository"
	}
	return ""
}
