package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// A REBOOTMGR_* name that no command knows, in the configuration file or in the environment, is
// a typo (REBOOTMGR_REBOOT_WINDOWS for REBOOTMGR_REBOOT_WINDOW) that would otherwise be ignored
// without a word, and the node judged by a default it was meant not to have. It is a usage error
// that names where it was set and the nearest known name. Every command's settings are known to
// every command: the file is shared, and a daemon's setting there is no typo for status.

// otherNames are the REBOOTMGR_* names that are no flag of any command, and why each is known.
// A name rebootmgr gives its tasks must stay known: a task may run rebootmgr itself.
func otherNames() map[string]string {
	return map[string]string{
		"REBOOTMGR_CONFIG":     "the configuration file to read",
		"REBOOTMGR_PHASE":      "given to tasks, with REBOOTMGR_NODE and REBOOTMGR_DRY_RUN (both flags too)",
		"REBOOTMGR_BIN":        "read by the package's kernel hook",
		"REBOOTMGR_DEFAULTS":   "read by the package's kernel hook",
		"REBOOTMGR_CACHE":      "read by scripts/install-consul and scripts/install-nfpm",
		"REBOOTMGR_THIRDPARTY": "read by .ci/run: where the Python rebootmgr's copies are for scripts/python-race",
	}
}

// retiredNames are names of the Python rebootmgr that rebootmgr does not take, with what to
// use instead.
func retiredNames() map[string]string {
	return map[string]string{
		"REBOOTMGR_CONSUL_PORT": "the Python rebootmgr's; rebootmgr takes the port in REBOOTMGR_CONSUL_ADDR=HOST:PORT",
	}
}

// flagNames are the REBOOTMGR_<FLAG> names of every command's flags.
func flagNames() map[string]bool {
	names := map[string]bool{}
	for _, c := range commands() {
		if c.flags == nil {
			continue
		}
		c.flags().VisitAll(func(f *flag.Flag) { names[envName(f.Name)] = true })
	}
	return names
}

// checkNames refuses the REBOOTMGR_* names of the configuration file and the environment that
// no command knows.
func (e env) checkNames() error {
	flags, others := flagNames(), otherNames()
	var unknown []string
	add := func(where, name string) {
		if strings.HasPrefix(name, "REBOOTMGR_") && !flags[name] && others[name] == "" {
			unknown = append(unknown, where+": "+name+" ("+hint(name, flags)+")")
		}
	}
	var inFile []string
	for name := range e.file {
		inFile = append(inFile, name)
	}
	sort.Slice(inFile, func(i, j int) bool { return e.lines[inFile[i]] < e.lines[inFile[j]] })
	for _, name := range inFile {
		add(fmt.Sprintf("%s:%d", e.path, e.lines[name]), name)
	}
	var inEnv []string
	if e.environ != nil {
		for _, kv := range e.environ() {
			name, _, _ := strings.Cut(kv, "=")
			inEnv = append(inEnv, name)
		}
	}
	sort.Strings(inEnv)
	for _, name := range inEnv {
		add("environment", name)
	}
	switch len(unknown) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: unknown setting: %s", errUsage, unknown[0])
	}
	return fmt.Errorf("%w: %d unknown settings: %s", errUsage, len(unknown), strings.Join(unknown, "; "))
}

// hint says what an unknown name may have meant: the nearest known name, or what replaces a
// name of the Python rebootmgr.
func hint(name string, flags map[string]bool) string {
	if why, ok := retiredNames()[name]; ok {
		return why
	}
	candidates := []string{"REBOOTMGR_CONFIG"}
	for f := range flags {
		candidates = append(candidates, f)
	}
	sort.Strings(candidates)
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := distance(name, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return "did you mean " + best + "?"
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
