package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// pythonNode is a node that still runs the Python rebootmgr (syseleven/rebootmgr 0.0.32, its
// lock from syseleven/consul_lib 0.1.8, Consul through Debian's python3-consul 0.7.1), reduced
// to what it does in Consul, request for request, so that the tests race rebootmgr against it
// as it is. Its gates that do not touch the lock (stop flag, config, holidays, checks, tasks)
// are left out; prepare stands where its pre-boot tasks and its 130 s wait are.
//
// What it sends, from rebootmgr/main.py cli() and consul_lib.Lock:
//   - PUT /v1/session/create {"checks": [], "ttl": "600s"}: no health check, a TTL of 600 s
//     (renewed every 5 s), Consul's default lock delay (15 s) and behaviour (release), on the
//     local agent's node;
//   - PUT /v1/kv/<lock>/.lock?acquire=ID with {"state": "done"} (no flags), once: taken by
//     someone else, it exits 4 ("Could not get consul lock");
//   - GET /v1/kv/<marker>: a value that starts with its host name is its own reboot, finished
//     now (post-boot: DELETE the marker, release, exit 0); any other value is another node
//     rebooting (exit 4); none, it prepares;
//   - after preparing, GET the lock key: no longer its session's, exit 5; else PUT the marker
//     with its host name, release (PUT ?release=ID, no body; PUT /v1/session/destroy/ID), put
//     the agent in maintenance and run shutdown -r +1;
//   - and on the way out (the finally of cli()), release once more: with the session still
//     open that is PUT ?release=ID and a destroy; once destroyed, a plain PUT of the lock key
//     without a body (consul_lib's release with session None).
//
// <lock> is service/rebootmgr/lock, or service/rebootmgr/<group>_lock given a group; <marker>
// reboot_in_progress, or <group>_reboot_in_progress.
type pythonNode struct {
	t testing.TB
	// addr is the HTTP address of the node's own agent.
	addr string
	// name is its host name, socket.gethostname().split(".")[0].
	name string
	// group is its --group (or its config's group); "" for none.
	group string
	// prepare stands for the pre-boot tasks and the wait, run holding the session lock; an exit
	// code other than 0 is a task that failed (100) or a check (2): the run ends with it.
	prepare func() int
	// acquired, when set, runs right after the session lock is taken, before the marker is read.
	acquired func()
	// gates makes it judge its config and stop flags as the Python code does (left out
	// otherwise): cli() exits 104 without a config that has "enabled" (GET nodes/<name>/config);
	// pre_reboot_state exits 102 while the fleet's stop flag or its group's (<group>_stop, the
	// group its --group or else its config names) is set, and 101 while its config's
	// "enabled" is false (is_node_disabled).
	gates bool

	mu      sync.Mutex
	reboots int
}

// The Python rebootmgr's exit codes the tests meet.
const (
	pyExitOK            = 0
	pyExitLockHeld      = 4   // EXIT_CONSUL_LOCK_FAILED: the lock is taken, or another node is rebooting
	pyExitLostLock      = 5   // EXIT_CONSUL_LOST_LOCK
	pyExitNodeDisabled  = 101 // EXIT_NODE_DISABLED
	pyExitStopFlagSet   = 102 // EXIT_STOP_FLAG_SET
	pyExitConfigMissing = 104 // EXIT_CONFIGURATION_IS_MISSING
)

// config is its config as get_config() reads it ({} when missing or not a JSON object).
func (p *pythonNode) config() map[string]any {
	var cfg map[string]any
	if v := p.get("service/rebootmgr/nodes/" + p.name + "/config"); v != "" && json.Unmarshal([]byte(v), &cfg) == nil && cfg != nil {
		return cfg
	}
	return map[string]any{}
}

// stopped is check_stop_flag(): the fleet's stop flag, then its group's.
func (p *pythonNode) stopped() bool {
	var pair struct{}
	if p.getPair("service/rebootmgr/stop", &pair) {
		return true
	}
	group := p.group
	if group == "" {
		group, _ = p.config()["group"].(string)
	}
	return group != "" && p.getPair("service/rebootmgr/"+group+"_stop", &pair)
}

// disabled is is_node_disabled(): not config.get('enabled', False), as Python takes truth.
func (p *pythonNode) disabled() bool {
	switch v := p.config()["enabled"].(type) {
	case bool:
		return !v
	case float64:
		return v == 0
	case string:
		return v == ""
	case nil:
		return true
	}
	return false
}

func (p *pythonNode) lockKey() string {
	if p.group != "" {
		return "service/rebootmgr/" + p.group + "_lock/.lock"
	}
	return "service/rebootmgr/lock/.lock"
}

func (p *pythonNode) markerKey() string {
	if p.group != "" {
		return "service/rebootmgr/" + p.group + "_reboot_in_progress"
	}
	return "service/rebootmgr/reboot_in_progress"
}

// rebootCount is how often its shutdown ran.
func (p *pythonNode) rebootCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reboots
}

// run is one run of the Python rebootmgr (its timer, or an operator); it returns the exit code.
func (p *pythonNode) run() int {
	p.t.Helper()
	if _, ok := p.config()["enabled"]; p.gates && !ok {
		return pyExitConfigMissing
	}
	session := p.createSession()
	renewing, stopRenew := p.renew(session)
	closed := false
	release := func() {
		// consul_lib Lock.release(): put(path, None, release=session), then close().
		if closed {
			p.put(p.lockKey(), nil, nil)
			return
		}
		p.put(p.lockKey(), nil, url.Values{"release": {session}})
		p.call("PUT", "/v1/session/destroy/"+session, nil, nil)
		stopRenew()
		<-renewing
		closed = true
	}
	defer release() // cli()'s finally

	if !p.put(p.lockKey(), []byte(`{"state": "done"}`), url.Values{"acquire": {session}}) {
		return pyExitLockHeld
	}
	if p.acquired != nil {
		p.acquired()
	}
	if marker := p.get(p.markerKey()); marker != "" {
		if !strings.HasPrefix(marker, p.name) {
			return pyExitLockHeld
		}
		// post_reboot_state: its tasks and checks, then the end of maintenance and the keys.
		p.call("PUT", "/v1/agent/maintenance?enable=false", nil, nil)
		p.call("DELETE", "/v1/kv/service/rebootmgr/nodes/"+p.name+"/reboot_required", nil, nil)
		p.call("DELETE", "/v1/kv/"+p.markerKey(), nil, nil)
		release()
		return pyExitOK
	}
	// pre_reboot_state
	if p.gates && p.stopped() {
		return pyExitStopFlagSet
	}
	if p.gates && p.disabled() {
		return pyExitNodeDisabled
	}
	if p.prepare != nil {
		if code := p.prepare(); code != 0 {
			return code
		}
	}
	var held struct{ Session string }
	if !p.getPair(p.lockKey(), &held) || held.Session != session {
		return pyExitLostLock
	}
	p.put(p.markerKey(), []byte(p.name), nil)
	release()
	p.call("PUT", "/v1/agent/maintenance?enable=true&reason="+url.QueryEscape("reboot by rebootmgr"), nil, nil)
	p.mu.Lock()
	p.reboots++ // shutdown -r +1
	p.mu.Unlock()
	return pyExitOK
}

// createSession is con.session.create(ttl=600, checks=[]).
func (p *pythonNode) createSession() string {
	p.t.Helper()
	var out struct{ ID string }
	p.call("PUT", "/v1/session/create", []byte(`{"checks": [], "ttl": "600s"}`), &out)
	if out.ID == "" {
		p.t.Fatal("python node: no session")
	}
	return out.ID
}

// renew is consul_lib's SessionRenewer: a renewal every 5 s until stopped.
func (p *pythonNode) renew(session string) (done <-chan struct{}, stop func()) {
	stopped := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			p.request("PUT", "/v1/session/renew/"+session, nil)
			select {
			case <-stopped:
				return
			case <-time.After(5 * time.Second):
			}
		}
	}()
	return finished, sync.OnceFunc(func() { close(stopped) })
}

// put is con.kv.put(key, value, ...): true when Consul answers true.
func (p *pythonNode) put(key string, value []byte, params url.Values) bool {
	p.t.Helper()
	path := "/v1/kv/" + key
	if len(params) > 0 {
		path += "?" + params.Encode()
	}
	var ok bool
	p.call("PUT", path, value, &ok)
	return ok
}

// get is con.kv.get(key) and the value decoded as check_reboot_in_progress does ("" when the
// key or its value is missing).
func (p *pythonNode) get(key string) string {
	var pair struct{ Value string }
	if !p.getPair(key, &pair) || pair.Value == "" {
		return ""
	}
	v, err := base64.StdEncoding.DecodeString(pair.Value)
	if err != nil {
		p.t.Fatalf("python node: value of %s: %v", key, err)
	}
	return string(v)
}

// getPair reads key into out; false when it does not exist.
func (p *pythonNode) getPair(key string, out any) bool {
	p.t.Helper()
	code, body := p.request("GET", "/v1/kv/"+key, nil)
	if code == http.StatusNotFound {
		return false
	}
	var pairs []json.RawMessage
	if code != http.StatusOK || json.Unmarshal(body, &pairs) != nil || len(pairs) != 1 {
		p.t.Fatalf("python node: GET %s: %d %s", key, code, body)
	}
	if err := json.Unmarshal(pairs[0], out); err != nil {
		p.t.Fatal(err)
	}
	return true
}

// call sends a request that must succeed and decodes its answer into out (when not nil).
func (p *pythonNode) call(method, path string, body []byte, out any) {
	p.t.Helper()
	code, resp := p.request(method, path, body)
	if code != http.StatusOK {
		p.t.Fatalf("python node: %s %s: %d %s", method, path, code, resp)
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			p.t.Fatalf("python node: %s %s: %v: %s", method, path, err, resp)
		}
	}
}

func (p *pythonNode) request(method, path string, body []byte) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.addr+path, r)
	if err != nil {
		panic(fmt.Sprintf("python node: %v", err))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}
