package sim

import (
	"fmt"
	"maps"
	"strings"
)

// One runs cfg once.
func One(cfg Config) (Result, []string, error) {
	w, err := New(cfg)
	if err != nil {
		return Result{}, nil, err
	}
	defer w.Close()
	res := w.Run()
	return res, w.Trace(), nil
}

// Shrink leaves out of a failing run's plan every fault it can while the run still breaks a
// promise of the same kind, one fault at a time until none more can go, and returns the
// smallest run's result, its trace and the faults it left out.
func Shrink(cfg Config, failed Result) (Result, []string, map[int]bool, error) {
	kind := violationKind(failed.Violations)
	drop := maps.Clone(cfg.Drop)
	if drop == nil {
		drop = map[int]bool{}
	}
	best, trace := failed, []string(nil)
	for changed := true; changed; {
		changed = false
		for f := 1; f <= cfg.Faults; f++ {
			if drop[f] {
				continue
			}
			drop[f] = true
			try := cfg
			try.Drop, try.Verbose = drop, nil
			res, tr, err := One(try)
			if err != nil {
				return Result{}, nil, nil, err
			}
			if len(res.Violations) > 0 && violationKind(res.Violations) == kind {
				best, trace, changed = res, tr, true
				continue
			}
			delete(drop, f)
		}
	}
	if trace == nil {
		try := cfg
		try.Drop, try.Verbose = drop, nil
		var err error
		if best, trace, err = One(try); err != nil {
			return Result{}, nil, nil, err
		}
	}
	return best, trace, drop, nil
}

// violationKind is what a violation broke, without the names and numbers of the run.
func violationKind(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v := vs[0]
	for _, word := range []string{"while the Python rebootmgr", "cannot be true", "stop flag", "disabled", "no rule over the fleet", "without a place", "down at once", "min_passing", "max_failing", "over its bound", "under its limit", "places in", "finished reboots of", "missed its turn", "overtaken", "held up", "of no zone", "of zones", "nodes of zone", "requests of Consul", "liveness", "no end", "nothing left", "cannot be read"} {
		if strings.Contains(v, word) {
			return word
		}
	}
	return v
}

// Readable is the part of a trace a person reads first: every fault, reboot, boot, daemon start
// and write, and the last lines before the end in full.
func Readable(trace []string, last int) []string {
	var out []string
	cut := max(0, len(trace)-last)
	for i, line := range trace {
		if i >= cut || important(line) {
			out = append(out, line)
		}
	}
	return out
}

func important(line string) bool {
	for _, s := range []string{"FAULT", "FINDING", "PYTHON", "python:", "goes down", "fault #", "REBOOT", "boots", "daemon starts", "VIOLATION", "operator", " PUT ", " DELETE ", " POST "} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// Dropped lists the faults left out, for the command that replays the run.
func Dropped(drop map[int]bool) string {
	var nums []string
	for f := 1; len(nums) < len(drop); f++ {
		if drop[f] {
			nums = append(nums, fmt.Sprint(f))
		}
	}
	return strings.Join(nums, ",")
}
