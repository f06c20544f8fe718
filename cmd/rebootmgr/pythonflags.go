package main

import (
	"strings"
)

// pythonFlags are the Python rebootmgr's flags that rebootmgr does not take, by name (without
// its dashes), each with what rebootmgr does instead: a command line written for it is a usage
// error that says so (see pythonFlagHint).
var pythonFlags = map[string]string{
	"ignore-stop-flag":               "rebootmgr lifts no gate for one run: a stop flag is removed where it is set (rebootmgr resume, or resume --group G), so every node sees the same; a node whose reboot happened finishes it under a stop anyway",
	"ignore-node-disabled":           "rebootmgr lifts no gate for one run: the node is enabled where it was disabled (rebootmgr enable NODE, which sets the Python config's \"enabled\" back too)",
	"ignore-failed-checks":           "health is never skipped: a service's tags say how many instances may fail (max_failing=N, min_passing=N), or the check is fixed; rebootmgr check shows every failing instance. The key service/rebootmgr/ignore_failed_checks is not honoured either",
	"ensure-config":                  "no node configuration is needed: a node without one is enabled, and rebootmgr disable / enable NODE write the disabled mark (and the Python config's \"enabled\", where it has one)",
	"skip-reboot-in-progress-key":    "the Python rebootmgr's markers are written with --python-markers (the default, while Python nodes are left) and not with --python-markers=false",
	"maintenance-reason":             "the maintenance reason is rebootmgr's own (\"rebootmgr: rebooting NODE\")",
	"dryrun":                         "--dry-run",
	"check-uptime":                   "always: the boot id must change (exit 103)",
	"check-holidays":                 "--blackout @/etc/rebootmgr/holidays (your dates), and --reboot-window",
	"post-reboot-wait-until-healthy": "what the daemon does: it waits on health events",
	"lazy-consul-checks":             "--settle 0s",
	"consul":                         "--consul-addr HOST:PORT",
	"consul-port":                    "--consul-addr HOST:PORT",
	"set-global-stop-flag":           "rebootmgr stop, against an agent of that datacenter",
	"unset-global-stop-flag":         "rebootmgr resume, against an agent of that datacenter",
	"set-group-stop-flag":            "rebootmgr stop --group G",
	"unset-group-stop-flag":          "rebootmgr resume --group G",
	"set-local-stop-flag":            "rebootmgr disable [NODE] --reason R",
	"unset-local-stop-flag":          "rebootmgr enable [NODE]",
	"stop-reason":                    "--reason, of rebootmgr stop and disable",
	"verbose":                        "--log-level info (the default), or debug",
}

// The Python rebootmgr's short flags, each for its long one (-vv is -v twice).
var pythonShort = map[string]string{
	"s": "ignore-stop-flag", "l": "ignore-node-disabled", "n": "dryrun", "u": "check-uptime", "v": "verbose", "vv": "verbose",
}

// pythonFlagHint is what rebootmgr does instead of the Python rebootmgr's flag in arg ("-s",
// "--ignore-stop-flag", "--consul=HOST"), as a clause for a usage error; "" when arg is none of
// its flags.
func pythonFlagHint(arg string) string {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok {
		return ""
	}
	name = strings.TrimPrefix(name, "-")
	name, _, _ = strings.Cut(name, "=")
	if long, ok := pythonShort[name]; ok {
		name = long
	}
	instead, ok := pythonFlags[name]
	if !ok {
		return ""
	}
	return "the Python rebootmgr's --" + name + " is not rebootmgr's: " + instead
}

// unknownFlagHint is pythonFlagHint for the flag package's error on an unknown flag.
func unknownFlagHint(err error) string {
	arg, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok {
		return ""
	}
	return pythonFlagHint(arg)
}
