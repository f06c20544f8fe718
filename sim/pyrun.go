package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// A run of the Python rebootmgr, as its systemd unit runs it (rebootmgr -v --check-holidays
// --check-uptime --check-triggers --post-reboot-wait-until-healthy), translated from
// rebootmgr/main.py and consul_lib request for request. Python's exceptions are errors here:
// every error of Consul raises in python-consul, and unwinds to cli()'s finally, which
// releases the lock; sys.exit is a pyExit, which unwinds the same way.

// pyPrefix is the Python rebootmgr's prefix, written out as its code does.
const pyPrefix = "service/rebootmgr/"

// pyRun is one run of the Python rebootmgr: its process, its client, its session.
type pyRun struct {
	w *World
	n *node
	p *proc
	c *api.Client
	// session is its session ("" once consul_lib's Lock closed it: session None).
	session   string
	lastRenew time.Time
	renewItem *item
	// finished: its SessionRenewer was told to finish; wedged: the process hangs (see main).
	finished, wedged bool
}

// pyExit is sys.exit(code).
type pyExit int

func (e pyExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// pyWedged is the end of a run whose process never exits (see pyRun.main).
const pyWedged = -1

// errKilled: the process was killed; nothing more of it runs.
var errKilled = errors.New("the process was killed")

// failed is an exception raised by a request (nil when it succeeded), or errKilled.
func (r *pyRun) failed(err error) error {
	if r.p.dead {
		return errKilled
	}
	return err
}

// sleep is time.sleep(d): the process parks until it is over.
func (r *pyRun) sleep(d time.Duration) error {
	w, p := r.w, r.p
	if p.dead {
		return errKilled
	}
	ch := make(chan struct{})
	p.wait = w.sched.add(w.sched.now.Add(max(d, 0)), r.n.name, "python sleep "+d.String(), func() {
		p.wait = nil
		w.resume(ch)
	})
	w.yielded <- struct{}{}
	select {
	case <-ch:
	case <-p.ctx.Done():
	}
	if p.dead {
		return errKilled
	}
	return nil
}

// retry is @retry(wait_fixed=2000, stop_max_delay=20000): f again every 2 s while it raises,
// until 20 s passed since the first attempt.
func (r *pyRun) retry(f func() error) error {
	start := r.w.sched.now
	for {
		err := f()
		if err == nil || errors.Is(err, errKilled) || r.w.sched.now.Sub(start) >= pyRetryFor {
			return err
		}
		if err := r.sleep(pyRetryWait); err != nil {
			return err
		}
	}
}

// cli is the run: the config, the cluster's members, the session lock, then the part before
// the reboot or after it; its finally releases the lock. It returns the exit code.
func (r *pyRun) cli() int {
	cfg, err := r.config()
	if err != nil {
		return exitOf(err)
	}
	if _, ok := cfg["enabled"]; !ok {
		return 104
	}
	if err := r.checkCluster(); err != nil {
		return exitOf(err)
	}
	lockKey, err := r.resolve("_lock/.lock", "lock/.lock")
	if err != nil {
		return exitOf(err)
	}
	if err := r.createSession(); err != nil {
		return exitOf(err)
	}
	r.startRenewer()
	err = r.locked(lockKey)
	if errors.Is(err, errKilled) {
		return 0
	}
	if rerr := r.release(lockKey); rerr != nil {
		if errors.Is(rerr, errKilled) {
			return 0
		}
		if r.session != "" {
			return pyWedged
		}
		return 1
	}
	return exitOf(err)
}

// exitOf is the exit code of a run that ended with err: its sys.exit, 0 for none, 1 for an
// exception.
func exitOf(err error) int {
	var e pyExit
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return int(e)
	}
	return 1
}

// pyExitMeaning names an exit code of the Python rebootmgr.
func pyExitMeaning(code int) string {
	return map[int]string{0: "done, or nothing to do", 1: "an exception", 2: "consul checks failed", 3: "a consul member failed",
		4: "the lock is held, or another node is rebooting", 5: "lost the lock", 100: "a task failed", 101: "the node is disabled",
		102: "a stop flag is set", 103: "uptime over two hours after the reboot", 104: "no configuration"}[code]
}

// locked is cli()'s try block: the lock taken without waiting, then the marker read: its own,
// the part after the reboot; another's, exit 4; none, the part before it and the reboot.
func (r *pyRun) locked(lockKey string) error {
	ok, err := r.acquire(lockKey)
	switch {
	case err != nil:
		return err
	case !ok:
		return pyExit(4)
	}
	var marker string
	if err := r.retry(func() (err error) { marker, err = r.rebootInProgress(); return err }); err != nil {
		return err
	}
	if marker != "" {
		if !strings.HasPrefix(marker, r.n.name) {
			return pyExit(4)
		}
		if err := r.postReboot(lockKey); err != nil {
			return err
		}
		return pyExit(0)
	}
	if err := r.preReboot(lockKey); err != nil {
		return err
	}
	if _, err := r.resolve("_reboot_in_progress", "reboot_in_progress"); err != nil {
		return err
	}
	if err := r.c.Agent().EnableNodeMaintenance("reboot by rebootmgr"); err != nil {
		return r.failed(err)
	}
	r.w.pyShutdown(r.n)
	return nil
}

// acquire is consul_lib's Lock.acquire(blocking=False): PUT ?acquire, and on a refusal a read
// of the key before it gives up.
func (r *pyRun) acquire(lockKey string) (bool, error) {
	ok, _, err := r.c.KV().Acquire(&api.KVPair{Key: lockKey, Value: []byte(`{"state": "done"}`), Session: r.session}, nil)
	if err != nil || ok {
		return ok, r.failed(err)
	}
	_, err = r.kvGet(lockKey)
	return false, err
}

// release is consul_lib's Lock.release(): the lock given back (a plain write of the key once
// the session is closed), then close(): the session destroyed (its failure ignored), the
// renewer told to finish and joined. An error leaves the session open and the renewer running.
func (r *pyRun) release(lockKey string) error {
	var err error
	if r.session == "" {
		_, err = r.c.KV().Put(&api.KVPair{Key: lockKey}, nil)
	} else {
		_, _, err = r.c.KV().Release(&api.KVPair{Key: lockKey, Session: r.session}, nil)
	}
	if err != nil {
		return r.failed(err)
	}
	if r.session != "" {
		if _, err := r.c.Session().Destroy(r.session, nil); err != nil && r.p.dead {
			return errKilled
		}
		r.session = ""
	}
	r.finished = true
	if r.renewItem != nil {
		// join(): the renewer ends when its sleep does.
		return r.sleep(r.renewItem.at.Sub(r.w.sched.now))
	}
	return nil
}

// config is get_config(): the node's config as a JSON object ({} when it is missing or is not
// one).
func (r *pyRun) config() (map[string]any, error) {
	p, err := r.kvGet(pyPrefix + "nodes/" + r.n.name + "/config")
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if p == nil || len(p.Value) == 0 || json.Unmarshal(p.Value, &cfg) != nil || cfg == nil {
		return map[string]any{}, nil
	}
	return cfg, nil
}

// resolve is resolve_lock, resolve_group_key and resolve_stop_flag: the group's key (group +
// suffix) when the config names a group, else the fleet's; each reads the config again.
func (r *pyRun) resolve(suffix, fleet string) (string, error) {
	cfg, err := r.config()
	if err != nil {
		return "", err
	}
	if g, _ := cfg["group"].(string); g != "" {
		return pyPrefix + g + suffix, nil
	}
	return pyPrefix + fleet, nil
}

// rebootInProgress is check_reboot_in_progress(): the marker's value ("" when absent or empty).
func (r *pyRun) rebootInProgress() (string, error) {
	key, err := r.resolve("_reboot_in_progress", "reboot_in_progress")
	if err != nil {
		return "", err
	}
	p, err := r.kvGet(key)
	if err != nil || p == nil {
		return "", err
	}
	return string(p.Value), nil
}
