package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/store"
)

// FleetLock hosts in the fault run: a rebootmgr fleetlock server on the server's agent, and hosts
// that speak the protocol as Zincati does, each on a tick of its own (seconds here, five minutes
// for Zincati): with an update staged, a pre-reboot every tick until granted; then a reboot that
// takes a while; then a steady-state every tick until it is answered 200. A granted host holds a
// place in its group's lock as a node does, and counts as a reboot in flight for every rule.
// Some ids collide: one is a node's name (refused id_in_use while that node's daemon is
// registered, and it is, unless the node left the cluster), one asks in a group no operator
// made (refused unknown_group, always).

// host is a simulated Zincati.
type host struct {
	id, group string
	// of is the node whose name the id is (nil: none); unknown says its group does not exist.
	of      *simNode
	unknown bool
	tick    time.Duration
	// state: "idle" (next update staged at next), "asking" (pre-reboot at next), "rebooting"
	// (back at next), "steady" (steady-state at next).
	state string
	next  time.Time
	// grantedAt is when its place was granted; asks counts its pre-reboots.
	grantedAt time.Time
	asks      int
}

// hostsServer starts the FleetLock server on the server's agent and returns its base URL; it is
// stopped when the test ends, its log shown if the test failed.
func (r *faultRun) hostsServer() string {
	t := r.t
	log := &fleettest.Log{}
	cmd := exec.Command(r.bin, "fleetlock", "--listen", "127.0.0.1:0", "--insecure-no-auth", "--min-reboot-interval", "0",
		"--consul-addr", r.nodes[0].Agent.HTTPAddr, "--log-level", "debug")
	cmd.Env = fleettest.Environ()
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("fleetlock log:\n%s", log)
		}
	})
	fleettest.WaitSeen(t, log.Seen("serving FleetLock"), "the FleetLock server")
	m := servingAt.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no address in the FleetLock server's log:\n%s", log)
	}
	return "http://" + m[1] + "/"
}

// newHosts are the run's hosts: two in the default group and two among the computes, one with
// the name of a compute (cmp2), and one in a group no operator made.
func (r *faultRun) newHosts() []*host {
	mk := func(id, group string) *host {
		return &host{id: id, group: group, of: r.nodeNamed(id), tick: r.between(time.Second, 3*time.Second).Round(100 * time.Millisecond),
			state: "idle", next: time.Now().Add(r.between(0, 3*time.Second))}
	}
	hosts := []*host{mk("zincati-a", store.DefaultGroup), mk("zincati-b", store.DefaultGroup), mk("zincati-c", fleettest.Compute), mk("cmp2", fleettest.Compute), mk("zincati-x", "edge")}
	hosts[len(hosts)-1].unknown = true
	return hosts
}

// host is the host of id that is no node (nil: none).
func (r *faultRun) host(id string) *host {
	for _, h := range r.hosts {
		if h.id == id && h.of == nil {
			return h
		}
	}
	return nil
}

// fleetlock sends a FleetLock request as Zincati does and returns the status and refusal.
func (r *faultRun) fleetlock(endpoint string, h *host) (int, fleetlock.Refusal, error) {
	body := fmt.Sprintf("{\n  \"client_params\": {\n    \"id\": %q,\n    \"group\": %q\n  }\n}", h.id, h.group)
	req, err := http.NewRequest(http.MethodPost, r.hostsURL+"v1/"+endpoint, strings.NewReader(body))
	if err != nil {
		return 0, fleetlock.Refusal{}, err
	}
	req.Header.Set("fleet-lock-protocol", "true")
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fleetlock.Refusal{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fleetlock.Refusal{}, err
	}
	var refusal fleetlock.Refusal
	if resp.StatusCode != http.StatusOK {
		if err := json.NewDecoder(bytes.NewReader(data)).Decode(&refusal); err != nil {
			return resp.StatusCode, refusal, fmt.Errorf("%d with a body that is no refusal: %s", resp.StatusCode, data)
		}
	}
	return resp.StatusCode, refusal, nil
}

// stepHosts has every host whose tick came do what Zincati does; during the faults an idle
// host stages its next update 1 to 6 s after the last; once they are over, only the hosts that
// wait for a place or are rebooting go on, to the end of their reboot.
func (r *faultRun) stepHosts() {
	r.w.mu.Lock()
	calm := r.w.calm
	r.w.mu.Unlock()
	for _, h := range r.hosts {
		if time.Now().Before(h.next) {
			continue
		}
		h.next = time.Now().Add(h.tick)
		switch h.state {
		case "idle":
			if calm {
				continue
			}
			h.state = "asking"
		case "asking":
			if calm && (h.unknown || h.of != nil) {
				h.state = "idle"
				continue
			}
			r.preReboot(h)
		case "rebooting":
			// Back: a steady-state at once, and every tick until answered.
			h.state, h.next = "steady", time.Now()
		case "steady":
			r.steadyState(h)
		}
	}
}

// preReboot asks for h's place and checks the answer: a host in a group no operator made is
// refused unknown_group; one named as a node whose daemon is registered (its node in the
// cluster, and back for 10 s at least: its agent registers its services again from its data dir
// at its first sync, within a second or two) is refused id_in_use; no place is granted while the
// stop flag was set from before the request until after its answer.
func (r *faultRun) preReboot(h *host) {
	t := r.t
	from := time.Now()
	present := h.of != nil && !h.of.left && from.Sub(h.of.backAt) >= 10*time.Second
	code, refusal, err := r.fleetlock("pre-reboot", h)
	until := time.Now()
	if err != nil {
		t.Fatalf("FleetLock host %s (group %s): pre-reboot: %v", h.id, h.group, err)
	}
	h.asks++
	r.cov.hostAsks++
	switch {
	case refusal.Kind == fleetlock.KindConsulUnavailable:
		return
	case h.unknown:
		if refusal.Kind != fleetlock.KindUnknownGroup {
			t.Fatalf("FleetLock host %s asked in group %s, which no operator made: %d %+v, want unknown_group", h.id, h.group, code, refusal)
		}
		r.cov.unknownGroup++
		return
	case present && h.of.left:
		// It left while the request was served: either answer may come.
	case present:
		if refusal.Kind != fleetlock.KindIDInUse {
			t.Fatalf("FleetLock host %s, the name of node %s whose daemon is registered: %d %+v, want id_in_use", h.id, h.of.Name, code, refusal)
		}
		r.cov.idInUse++
		return
	}
	if code != http.StatusOK {
		switch refusal.Kind {
		case fleetlock.KindLockHeld, fleetlock.KindStopped, fleetlock.KindIDInUse:
			return
		case fleetlock.KindUnhealthy:
			// A host named as a node away is judged by that node's services, which it is
			// remembered running: gone from the catalog, they fail.
			if h.of != nil {
				return
			}
		}
		t.Fatalf("FleetLock host %s (group %s): pre-reboot refused: %d %+v", h.id, h.group, code, refusal)
	}
	r.w.mu.Lock()
	stopped := r.w.stop.held(from, until)
	r.w.mu.Unlock()
	if stopped {
		t.Fatalf("FleetLock host %s was granted a place in group %s with the stop flag set from before its request (%s) until after its answer (%s)", h.id, h.group, from.Format(time.StampMilli), until.Format(time.StampMilli))
	}
	t.Logf("FleetLock host %s: place granted in group %s after %d asks", h.id, h.group, h.asks)
	h.state, h.grantedAt, h.asks = "rebooting", until, 0
	r.cov.hostReboots++
	// The reboot: 0.5 to 3 s, then a steady-state every tick.
	h.next = until.Add(r.between(500*time.Millisecond, 3*time.Second))
}

// steadyState gives h's place back: 200 whatever holds (a host with no services has no health to
// wait for, and a stop flag does not hold a steady-state), unless Consul is away or, for a host
// named as a node, that node's services fail.
func (r *faultRun) steadyState(h *host) {
	code, refusal, err := r.fleetlock("steady-state", h)
	if err != nil {
		r.t.Fatalf("FleetLock host %s (group %s): steady-state: %v", h.id, h.group, err)
	}
	switch {
	case code == http.StatusOK:
		h.state = "idle"
		h.next = time.Now().Add(r.between(time.Second, 6*time.Second))
	case refusal.Kind == fleetlock.KindUnhealthy && h.of != nil:
		// A host named as a node is judged by that node's services: it waits for them.
	case refusal.Kind != fleetlock.KindConsulUnavailable:
		r.t.Fatalf("FleetLock host %s (group %s): steady-state refused: %d %+v", h.id, h.group, code, refusal)
	}
}

// hostsBusy says whether a host waits for a place or is rebooting.
func (r *faultRun) hostsBusy() bool {
	for _, h := range r.hosts {
		if h.state != "idle" {
			return true
		}
	}
	return false
}
