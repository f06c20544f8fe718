package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The settings in docs/configuration.md are generated from the commands' own flag sets, between
// two markers; the text around them is written by hand. After a flag changes:
//
//	go test ./cmd/rebootmgr -run TestConfigurationDoc -update
var updateConfigDoc = flag.Bool("update", false, "rewrite the generated settings in docs/configuration.md")

const (
	configDoc      = "../../docs/configuration.md"
	configDocBegin = "<!-- Generated from the commands' flags: go test ./cmd/rebootmgr -run TestConfigurationDoc -update -->\n"
	configDocEnd   = "<!-- End of the generated settings. -->\n"
)

// TestConfigurationDoc: docs/configuration.md lists every setting of every command, as the
// flag sets define them (name, variable, default, what it takes, which commands take it, its
// help), and every REBOOTMGR_* name that is no flag. A flag added, renamed or changed without
// the doc fails here.
func TestConfigurationDoc(t *testing.T) {
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	head, rest, ok := strings.Cut(doc, configDocBegin)
	if !ok {
		t.Fatalf("%s lacks the line %q", configDoc, configDocBegin)
	}
	got, tail, ok := strings.Cut(rest, configDocEnd)
	if !ok {
		t.Fatalf("%s lacks the line %q", configDoc, configDocEnd)
	}
	want := settingsReference()
	if got == want {
		return
	}
	if *updateConfigDoc {
		if err := os.WriteFile(configDoc, []byte(head+configDocBegin+want+configDocEnd+tail), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("the settings in %s are not the flags' (go test ./cmd/rebootmgr -run TestConfigurationDoc -update):\n%s", configDoc, firstDifference(got, want))
}

// TestConfigurationDocNamesEveryFlag holds the generator to the flag sets: every flag of every
// command has its section, and every section is a flag's.
func TestConfigurationDocNamesEveryFlag(t *testing.T) {
	ref := settingsReference()
	for _, s := range allSettings() {
		if !strings.Contains(ref, "\n### `--"+s.name+"`\n") {
			t.Errorf("no section for --%s", s.name)
		}
	}
	if n, want := strings.Count(ref, "\n### `--"), len(allSettings()); n != want {
		t.Errorf("%d sections, want one per flag: %d", n, want)
	}
}

// TestDocSettingNames: every REBOOTMGR_* name in README.md and docs/*.md is one rebootmgr
// knows (a flag's, or one of the names that are no flag) or refuses with a hint, or a
// benchmark's variable (REBOOTMGR_BENCH_*, which deploy's TestDocCites holds to the benchmarks):
// a name misspelt in the docs would be refused on a node.
func TestDocSettingNames(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	known := flagNames()
	for name := range otherNames() {
		known[name] = true
	}
	for name := range retiredNames() {
		known[name] = true
	}
	for _, path := range append(files, "../../README.md") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range settingNameRE.FindAllString(string(data), -1) {
			if name == docTypo {
				if known[name] {
					t.Errorf("%s gives %s as a typo, but it is a setting", path, name)
				}
				continue
			}
			if !known[name] && !strings.HasPrefix(name, "REBOOTMGR_BENCH_") {
				t.Errorf("%s names %s, which is no setting (%s)", path, name, hint(name, known))
			}
		}
	}
}

var settingNameRE = regexp.MustCompile(`\bREBOOTMGR_[A-Z][A-Z0-9_]*`)

// docTypo is the misspelt name the docs give as the example of a name refused.
const docTypo = "REBOOTMGR_REBOOT_WINDOWS"

// firstDifference shows the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d of the generated part:\n  doc:   %q\n  flags: %q", i+1, gl, wl)
		}
	}
	return "(no line differs)"
}

// docSetting is one flag name and its forms across the commands that take it.
type docSetting struct {
	name  string
	forms []docForm
}

// docForm is a flag as some commands define it: one help text and default.
type docForm struct {
	usage, def, takes string
	commands          []string
}

// allSettings is every flag of every command, in name order, each with the forms the commands
// give it (in the commands' order).
func allSettings() []docSetting {
	byName := map[string]*docSetting{}
	for _, c := range commands() {
		if c.flags == nil {
			continue
		}
		fs := c.flags()
		for _, g := range fs.groups {
			g.flags.VisitAll(func(f *flag.Flag) {
				s := byName[f.Name]
				if s == nil {
					s = &docSetting{name: f.Name}
					byName[f.Name] = s
				}
				s.add(c.name, f)
			})
		}
	}
	var out []docSetting
	for _, s := range byName {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (s *docSetting) add(command string, f *flag.Flag) {
	form := docForm{usage: f.Usage, def: f.DefValue, takes: takesOf(f)}
	for i := range s.forms {
		if s.forms[i].usage == form.usage && s.forms[i].def == form.def && s.forms[i].takes == form.takes {
			s.forms[i].commands = append(s.forms[i].commands, command)
			return
		}
	}
	form.commands = []string{command}
	s.forms = append(s.forms, form)
}

// takesOf says what kind of value a flag takes.
func takesOf(f *flag.Flag) string {
	switch f.Value.(type) {
	case *listFlag:
		return "a list"
	case *settleFlag:
		return "`auto` or a duration"
	}
	switch name, _ := flag.UnquoteUsage(f); name {
	case "":
		return "`true` or `false`"
	case "duration":
		return "a duration (`90s`, `5m`, `1h`)"
	case "int":
		return "a number"
	case "string":
		return "text"
	default:
		return name
	}
}

// settingsReference is the generated part of docs/configuration.md.
func settingsReference() string {
	var b strings.Builder
	writeFlagsByCommand(&b)
	b.WriteString("\n## Every setting\n\nEach flag, its variable, what it takes, its default and the commands that take it. Its text\nis the command's help (`rebootmgr COMMAND -h`).\n")
	for _, s := range allSettings() {
		writeSetting(&b, s)
	}
	b.WriteString("\n## Names that are no flag\n\nThese `REBOOTMGR_*` names are known to every command, though no command has a flag of them:\n\n| name | why it is known |\n|---|---|\n")
	writeNames(&b, otherNames())
	b.WriteString("\nThese are refused, with what to use instead:\n\n| name | instead |\n|---|---|\n")
	writeNames(&b, retiredNames())
	b.WriteString("\n")
	return b.String()
}

// writeFlagsByCommand writes which command takes which flag: the flags every command takes
// once, then each command's others.
func writeFlagsByCommand(b *strings.Builder) {
	link := func(name string) string { return fmt.Sprintf("[`--%s`](#--%s)", name, name) }
	var common []string
	for _, s := range allSettings() {
		if s.everyCommand() {
			common = append(common, link(s.name))
		}
	}
	fmt.Fprintf(b, "\n## Flags by command\n\nEvery command takes %s. Besides:\n\n| command | flags |\n|---|---|\n", strings.Join(common, ", "))
	for _, c := range commands() {
		if c.flags == nil {
			continue
		}
		var names []string
		c.flags().VisitAll(func(f *flag.Flag) {
			if !slices.Contains(common, link(f.Name)) {
				names = append(names, link(f.Name))
			}
		})
		if len(names) == 0 {
			names = []string{"none"}
		}
		fmt.Fprintf(b, "| `%s` | %s |\n", c.name, strings.Join(names, " "))
	}
}

// everyCommand says whether every command that takes flags takes s, as one form.
func (s docSetting) everyCommand() bool {
	return len(s.forms) == 1 && len(s.forms[0].commands) == len(flagCommands())
}

func writeSetting(b *strings.Builder, s docSetting) {
	fmt.Fprintf(b, "\n### `--%s`\n\n`%s`", s.name, envName(s.name))
	takes, def := s.forms[0].takes, s.forms[0].def
	var who []string
	for _, f := range s.forms {
		if f.takes != takes || f.def != def {
			takes, def = "", ""
		}
		who = append(who, f.commands...)
	}
	if takes != "" {
		fmt.Fprintf(b, ": %s; default %s", takes, shownDefault(def))
	}
	if s.everyCommand() {
		b.WriteString("; taken by every command.\n\n")
	} else {
		fmt.Fprintf(b, "; taken by `%s`.\n\n", strings.Join(who, "`, `"))
	}
	if len(s.forms) == 1 {
		fmt.Fprintf(b, "%s\n", markdownText(s.forms[0].usage))
		return
	}
	for _, f := range s.forms {
		fmt.Fprintf(b, "- `%s`: ", strings.Join(f.commands, "`, `"))
		if takes == "" {
			fmt.Fprintf(b, "%s; default %s. ", f.takes, shownDefault(f.def))
		}
		fmt.Fprintf(b, "%s\n", markdownText(f.usage))
	}
}

func shownDefault(def string) string {
	if def == "" {
		return "none"
	}
	return "`" + def + "`"
}

// flagCommands are the commands that take flags.
func flagCommands() []string {
	var out []string
	for _, c := range commands() {
		if c.flags != nil {
			out = append(out, c.name)
		}
	}
	return out
}

func writeNames(b *strings.Builder, names map[string]string) {
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "| `%s` | %s |\n", k, markdownText(names[k]))
	}
}

// markdownText is help text as Markdown shows it literally: the few characters that would start
// markup are escaped.
func markdownText(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "<", `\<`, "|", `\|`, "`", "\\`").Replace(s)
}
