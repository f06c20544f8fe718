package sim

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

// The Python rebootmgr's two states and its gates (rebootmgr/main.py): pre_reboot_state and
// post_reboot_state, check_stop_flag, is_node_disabled, is_reboot_required,
// check_consul_services and check_consul_cluster. Left out, as the simulation has none: the
// holidays (no day of the simulation is a German holiday), the tasks (none: the tasks
// directories are empty), the file /var/run/reboot-required (absent), the whitelist
// service/rebootmgr/ignore_failed_checks (read, never set).

// preReboot is pre_reboot_state: its gates, the checks, the wait, the checks again, the lock
// still its own, its gates again, then its marker and the lock given back.
func (r *pyRun) preReboot(lockKey string) error {
	marker, err := r.resolve("_reboot_in_progress", "reboot_in_progress")
	if err != nil {
		return err
	}
	if err := r.stopFlag(); err != nil {
		return err
	}
	var disabled bool
	if err := r.retry(func() (err error) { disabled, err = r.disabled(); return err }); err != nil {
		return err
	}
	if disabled {
		return pyExit(101)
	}
	if err := r.required(); err != nil {
		return err
	}
	if err := r.checkServices("rebootmgr_preboot", false); err != nil {
		return err
	}
	if _, err := r.resolve("_reboot_in_progress", "reboot_in_progress"); err != nil { // run_tasks
		return err
	}
	if err := r.sleep(pyChecksWait); err != nil {
		return err
	}
	if err := r.checkCluster(); err != nil {
		return err
	}
	if err := r.checkServices("rebootmgr_preboot", false); err != nil {
		return err
	}
	p, err := r.kvGet(lockKey) // consul_lock.acquired
	if err != nil {
		return err
	}
	if p == nil || p.Session != r.session {
		return pyExit(5)
	}
	if err := r.stopFlag(); err != nil {
		return err
	}
	if err := r.required(); err != nil {
		return err
	}
	return r.mark(lockKey, marker)
}

// mark writes the marker with the host name, and gives the lock back.
func (r *pyRun) mark(lockKey, marker string) error {
	if _, err := r.c.KV().Put(&api.KVPair{Key: marker, Value: []byte(r.n.name)}, nil); err != nil {
		return r.failed(err)
	}
	r.w.pyMarked(r.n, lockKey, r.session)
	return r.release(lockKey)
}

// postReboot is post_reboot_state: the uptime, the checks until they pass, maintenance off, the
// request and the marker deleted, the lock given back.
func (r *pyRun) postReboot(lockKey string) error {
	marker, err := r.resolve("_reboot_in_progress", "reboot_in_progress")
	if err != nil {
		return err
	}
	if r.w.uptime(r.n) > pyMaxUptime {
		return pyExit(103)
	}
	if err := r.checkServices("rebootmgr_postboot", true); err != nil {
		return err
	}
	if _, err := r.resolve("_reboot_in_progress", "reboot_in_progress"); err != nil { // run_tasks
		return err
	}
	if err := r.checkServices("rebootmgr_postboot", true); err != nil {
		return err
	}
	if err := r.c.Agent().DisableNodeMaintenance(); err != nil {
		return r.failed(err)
	}
	if _, err := r.c.KV().Delete(r.w.askKey(r.n), nil); err != nil {
		return r.failed(err)
	}
	r.w.pyAskDeleted(r.n)
	if _, err := r.c.KV().Delete(marker, nil); err != nil {
		return r.failed(err)
	}
	r.w.pyFinished(r.n)
	return r.release(lockKey)
}

// stopFlag is _check_and_handle_stop_flag: the fleet's stop flag, then the group's (the
// fleet's again for a node of no group): exit 102 when one is set.
func (r *pyRun) stopFlag() error {
	var set bool
	err := r.retry(func() error {
		p, err := r.kvGet(pyPrefix + "stop")
		if err != nil || p != nil {
			set = p != nil
			return err
		}
		key, err := r.resolve("_stop", "stop")
		if err != nil {
			return err
		}
		p, err = r.kvGet(key)
		set = p != nil
		return err
	})
	if err != nil {
		return err
	}
	if set {
		return pyExit(102)
	}
	return nil
}

// disabled is is_node_disabled(): not config.get('enabled', False), as Python takes truth.
func (r *pyRun) disabled() (bool, error) {
	cfg, err := r.config()
	if err != nil {
		return false, err
	}
	switch v := cfg["enabled"].(type) {
	case bool:
		return !v, nil
	case float64:
		return v == 0, nil
	case string:
		return v == "", nil
	case []any:
		return len(v) == 0, nil
	case map[string]any:
		return len(v) == 0, nil
	}
	return true, nil
}

// required is --check-triggers: exit 0 unless the node's request is there.
func (r *pyRun) required() error {
	var asked bool
	if err := r.retry(func() error {
		p, err := r.kvGet(r.w.askKey(r.n))
		asked = p != nil
		return err
	}); err != nil {
		return err
	}
	if !asked {
		return pyExit(0)
	}
	return nil
}

// checkServices is check_consul_services with the tags rebootmgr and phase: every check of
// every instance of the node's services so tagged must pass (but the node's own maintenance);
// a failing one exits 2, or, with wait, is looked at again after pyHealthyWait until none fails.
// Failing checks are kept by their ID, the last of each ID read, as its dict keeps them.
func (r *pyRun) checkServices(phase string, wait bool) error {
	for {
		if _, err := r.kvGet(pyPrefix + "ignore_failed_checks"); err != nil {
			return err
		}
		services, err := r.c.Agent().Services()
		if err != nil {
			return r.failed(err)
		}
		var ids []string
		for id, s := range services {
			if slices.Contains(s.Tags, "rebootmgr") || slices.Contains(s.Tags, phase) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		failed := map[string]*api.HealthCheck{}
		for _, id := range ids {
			entries, _, err := r.c.Health().Service(id, "", false, nil)
			if err != nil {
				return r.failed(err)
			}
			for _, e := range entries {
				for _, c := range e.Checks {
					if c.Status != api.HealthPassing && !(c.CheckID == api.NodeMaint && slices.Contains(e.Service.Tags, "ignore_maintenance")) {
						failed[c.CheckID] = c
					}
				}
			}
		}
		var names []string
		for id, c := range failed {
			if !(id == api.NodeMaint && c.Node == r.n.name) {
				names = append(names, id+" on "+c.Node)
			}
		}
		if len(names) == 0 {
			return nil
		}
		if !wait {
			return pyExit(2)
		}
		if err := r.sleep(pyHealthyWait); err != nil {
			return err
		}
	}
}

// checkCluster is check_consul_cluster: every member of the node's group (by the configs'
// "group"; a member without one is of every group, and a node whose config names none sees
// them all) alive or left, else exit 3.
func (r *pyRun) checkCluster() error {
	if _, err := r.kvGet(pyPrefix + "ignore_failed_checks"); err != nil {
		return err
	}
	pairs, _, err := r.c.KV().List(pyPrefix+"nodes/", nil)
	if err != nil {
		return r.failed(err)
	}
	groups := map[string]string{}
	for _, p := range pairs {
		parts := strings.Split(p.Key, "/")
		if !strings.HasSuffix(p.Key, "/config") || len(parts) < 4 {
			continue
		}
		var cfg map[string]any
		if json.Unmarshal(p.Value, &cfg) == nil {
			groups[parts[3]], _ = cfg["group"].(string)
		}
	}
	members, err := r.c.Agent().Members(false)
	if err != nil {
		return r.failed(err)
	}
	local := groups[r.n.name]
	for _, m := range members {
		if g := groups[m.Name]; local != "" && g != "" && g != local {
			continue
		}
		if m.Status != 1 && m.Status != 3 {
			return pyExit(3)
		}
	}
	return nil
}
