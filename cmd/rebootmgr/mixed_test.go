package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/gate"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/internal/fleettest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// TestPythonHolderHoldsEveryGate: a node still running the Python rebootmgr that holds its
// session lock (it prepares) or has its marker set (it reboots), without a group or in this
// node's group (default included), holds this node's lock: reboot, its dry run and check exit
// 4 and name the key, status blocks the node at the lock and shows the holder in its group.
// Once the Python node is done, the node reboots. Another group's Python node holds nothing.
func TestPythonHolderHoldsEveryGate(t *testing.T) {
	tests := []struct {
		name string
		// group is the node's (its agent's meta); pyGroup the Python node's --group.
		group, pyGroup string
		session        bool
		holds          bool
	}{
		{name: "marker of no group", group: "default", holds: true},
		{name: "marker of no group, node in a group", group: "compute", holds: true},
		{name: "marker of the group", group: "compute", pyGroup: "compute", holds: true},
		{name: "marker of the default group", group: "default", pyGroup: "default", holds: true},
		{name: "session lock of no group", group: "default", session: true, holds: true},
		{name: "session lock of no group, node in a group", group: "compute", session: true, holds: true},
		{name: "session lock of the group", group: "compute", pyGroup: "compute", session: true, holds: true},
		{name: "session lock of the default group", group: "default", pyGroup: "default", session: true, holds: true},
		{name: "marker of another group", group: "compute", pyGroup: "ceph"},
		{name: "session lock of another group", group: "compute", pyGroup: "ceph", session: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var meta []string
			if tt.group != "default" {
				meta = []string{"-node-meta", "rebootmgr-group:" + tt.group}
			}
			n := newTestNode(t, consultest.Dev(t, "n1", meta...))
			waitGroup(t, n, tt.group)
			py := &pythonNode{t: t, addr: n.agent.HTTPAddr, name: "py-1", group: tt.pyGroup}
			key := py.markerKey()
			done := func() {}
			if tt.session {
				key = py.lockKey()
				preparing, finish := make(chan struct{}), make(chan struct{})
				py.prepare = func() int { close(preparing); <-finish; return 100 } // a pre-boot task fails
				exit := make(chan int, 1)
				go func() { exit <- py.run() }()
				<-preparing
				done = func() {
					close(finish)
					if code := <-exit; code != 100 {
						t.Fatalf("python node exited %d", code)
					}
				}
			} else {
				py.put(key, []byte(py.name), nil)
				done = func() { py.call("DELETE", "/v1/kv/"+key, nil, nil) }
			}
			if !tt.holds {
				n.expect(n.run("reboot"), 0, "reboot started")
				done()
				return
			}
			named := key
			if !tt.session {
				named = key + " = py-1"
			}
			n.expect(n.run("reboot"), exitLockHeld, "the Python rebootmgr holds it", named)
			n.expect(n.run("reboot", "--dry-run"), exitLockHeld, "the Python rebootmgr holds it", named)
			n.expect(n.run("check"), exitLockHeld, "the Python rebootmgr holds it", named)
			// status sees what asks through Consul (the file that asked reboot is the node's own).
			n.put(n.keys().RebootRequired(n.agent.Node), "kernel")
			st := status(t, n)
			for _, node := range st.Nodes {
				if node.Node == "n1" && (node.Blocked == nil || node.Blocked.Gate != gate.Lock || !strings.Contains(node.Blocked.Reason, named)) {
					t.Errorf("status: n1 blocked by %+v", node.Blocked)
				}
			}
			for _, g := range st.Groups {
				// A Python holder of no group holds every group.
				if _, ok := g.Python[key]; ok != (g.Name == tt.group || tt.pyGroup == "") {
					t.Errorf("status: group %s shows python holders %v", g.Name, g.Python)
				}
			}
			if n.rebootCount() != 0 || n.get(n.keys().GroupLock(tt.group)) != nil {
				t.Fatal("took the lock while the Python rebootmgr held it")
			}
			done()
			n.expect(n.run("reboot"), 0, "reboot started")
		})
	}
}

// status reads rebootmgr status --json.
func status(t *testing.T, n *testNode) fleet.Status {
	t.Helper()
	r := n.run("status", "--json")
	var st fleet.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status: %s", r)
	}
	return st
}

// waitGroup waits until the catalog gives n's node its group (an agent's node meta reaches the
// catalog a moment after the node).
func waitGroup(t *testing.T, n *testNode, group string) {
	t.Helper()
	waitUntil(t, 60*time.Second, func() string { return fmt.Sprintf("node %s never in group %s in the catalog", n.agent.Node, group) }, func(q *api.QueryOptions) (bool, *api.QueryMeta, error) {
		node, meta, err := n.agent.Client.Catalog().Node(n.agent.Node, q)
		if err != nil || node == nil || node.Node == nil {
			return false, meta, err
		}
		g := node.Node.Meta[store.GroupMeta]
		return g == group || group == store.DefaultGroup && g == "", meta, nil
	})
}

// mixedPair is a node running rebootmgr (n00, in group, "default" for none) and a node still
// running the Python rebootmgr (py-1, given --group pyGroup, "" for none), each with its own
// agent in one cluster.
func mixedPair(t *testing.T, group, pyGroup string) (*testNode, *pythonNode) {
	t.Helper()
	var meta []string
	if group != store.DefaultGroup {
		meta = []string{"-node-meta", "rebootmgr-group:" + group}
	}
	server := consultest.Dev(t, "n00", meta...)
	n := newTestNode(t, server)
	py := consultest.Client(t, "py-1", server)
	waitGroup(t, n, group)
	return n, &pythonNode{t: t, addr: py.HTTPAddr, name: "py-1", group: pyGroup}
}

// mixedGroups are the ways a node running rebootmgr and one running the Python rebootmgr share
// a lock: rebootmgr's group, and the Python node's --group.
func mixedGroups() []struct{ group, pyGroup string } {
	return []struct{ group, pyGroup string }{
		{"default", ""},
		{"default", "default"},
		{"compute", "compute"},
		{"compute", ""},
	}
}

// TestMixedFleetTakesTurns: a node running rebootmgr and one running the Python rebootmgr, both
// asked to reboot, go one after the other, whichever starts first, and never both: while the
// Python node prepares (its session lock) and reboots (its marker) the daemon waits, woken by
// its watch of the Python keys alone (--interval 1h); while the rebootmgr node prepares and
// reboots, its markers make the Python node exit 4, until it has finished after its boot.
func TestMixedFleetTakesTurns(t *testing.T) {
	for _, tt := range mixedGroups() {
		t.Run(tt.group+"/"+tt.pyGroup, func(t *testing.T) {
			n, py := mixedPair(t, tt.group, tt.pyGroup)
			n.put(n.keys().RebootRequired("n00"), "")

			// The Python node first: it prepares, holding its session lock only.
			preparing, prepared := make(chan struct{}), make(chan struct{})
			py.prepare = func() int { close(preparing); <-prepared; return 0 }
			exit := make(chan int, 1)
			go func() { exit <- py.run() }()
			<-preparing
			d := n.startDaemon("--interval", "1h")
			fleettest.WaitSeen(t, d.Log.Seen("the Python rebootmgr holds it ("+py.lockKey()+")"), "the daemon waiting for the Python node preparing")
			close(prepared)
			if code := <-exit; code != pyExitOK || py.rebootCount() != 1 {
				t.Fatalf("python node: exit %d, %d reboots", code, py.rebootCount())
			}
			fleettest.WaitSeen(t, d.Log.Seen("the Python rebootmgr holds it ("+py.markerKey()+" = py-1)"), "the daemon waiting for the Python node rebooting")
			if n.rebootCount() != 0 {
				t.Fatal("rebooted while the Python node rebooted")
			}
			py.prepare = nil
			if code := py.run(); code != pyExitOK { // its boot: the post-boot part
				t.Fatalf("python node after its boot: exit %d", code)
			}
			fleettest.WaitSeen(t, d.Log.Seen("msg=rebooting"), "the reboot once the Python node is done")
			d.stop()
			n.boot()
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
			for _, key := range []string{n.keys().LegacyMarker(), n.keys().LegacyGroupMarker(tt.group)} {
				if p := n.get(key); p != nil {
					t.Fatalf("%s left after the reboot: %q", key, p.Value)
				}
			}

			// rebootmgr first: it prepares (a task waits for the gate), then reboots.
			gate := filepath.Join(t.TempDir(), "go")
			n.task("pre", "10-wait", "while [ ! -e "+gate+" ]; do sleep 0.05; done")
			n.put(n.keys().RebootRequired("n00"), "")
			d = n.startDaemon("--interval", "1h")
			waitLock(t, n, tt.group, func(r lock.Record) bool { return len(r.Holders) == 1 })
			for _, key := range []string{n.keys().LegacyMarker(), n.keys().LegacyGroupMarker(tt.group)} {
				if p := n.get(key); p == nil || string(p.Value) != "[rebootmgr] n00" {
					t.Fatalf("%s while n00 prepares: %v", key, p)
				}
			}
			if code := py.run(); code != pyExitLockHeld {
				t.Fatalf("python node while n00 prepares: exit %d", code)
			}
			writeFile(t, gate, "")
			fleettest.WaitSeen(t, d.Log.SeenN("msg=rebooting", 1), "the reboot")
			d.stop()
			if code := py.run(); code != pyExitLockHeld {
				t.Fatalf("python node while n00 reboots: exit %d", code)
			}
			n.boot()
			if code := py.run(); code != pyExitLockHeld {
				t.Fatalf("python node after n00 booted, before it finished: exit %d", code)
			}
			n.expect(n.run("reboot", "--check-triggers"), 0, "reboot finished")
			if code := py.run(); code != pyExitOK || py.rebootCount() != 2 {
				t.Fatalf("python node once n00 is done: exit %d, %d reboots", code, py.rebootCount())
			}
			if n.rebootCount() != 2 {
				t.Fatalf("n00 rebooted %d times", n.rebootCount())
			}
		})
	}
}

// TestMixedFleetRace: a node running rebootmgr and one running the Python rebootmgr race,
// round after round, the Python node starting at once or at a step of rebootmgr's run: between
// its read of the lock and its write, once it holds its place, just before its last look.
// Whoever wins reboots and finishes after its boot before the next round. Never do both reboot
// in a round, and each wins some.
func TestMixedFleetRace(t *testing.T) {
	starts := []struct {
		name string
		// text appears in rebootmgr's log n times when the Python node starts ("": at once).
		text string
		n    int
	}{
		{"at once", "", 0},
		{"between the read and the write of the lock", "health checks pass", 2},
		{"once rebootmgr holds its place", "reboot lock taken", 1},
		{"just before rebootmgr's last look", "node in maintenance", 1},
	}
	for _, tt := range mixedGroups()[:2] {
		t.Run(tt.group+"/"+tt.pyGroup, func(t *testing.T) {
			n, py := mixedPair(t, tt.group, tt.pyGroup)
			won := map[string]int{}
			for round := range 4 * len(starts) {
				start := starts[round%len(starts)]
				log := &fleettest.Log{}
				goDone := make(chan result, 1)
				before := py.rebootCount()
				go func() { goDone <- n.runWith(context.Background(), nil, log, "reboot") }()
				if start.text != "" {
					select {
					case <-log.SeenN(start.text, start.n):
					case r := <-goDone: // it ended before that step: now, then
						goDone <- r
					}
				}
				code := py.run()
				r := <-goDone
				// A write that found a Python key changed since its read, and read again.
				won["writes read again"] += log.Count("reboot lock changed under us")
				goWon, pyWon := r.code == 0, py.rebootCount() > before
				switch {
				case goWon && pyWon:
					t.Fatalf("round %d (python %s): both rebooted: rebootmgr %s; python exit %d", round, start.name, r, code)
				case goWon:
					n.expect(r, 0, "reboot started")
					won["rebootmgr"]++
					n.boot()
					n.expect(n.run("reboot"), 0, "reboot finished")
				case pyWon:
					n.expect(r, exitLockHeld, "Python rebootmgr")
					won["python"]++
					if code := py.run(); code != pyExitOK {
						t.Fatalf("round %d: python node after its boot: exit %d", round, code)
					}
				default:
					// rebootmgr took its place while the Python node looked (which exits 4 on the
					// marker), and saw its session lock at the last look: it keeps its place.
					n.expect(r, exitLockHeld, "keeps its place")
					won["neither"]++
				}
			}
			t.Logf("%v", won)
			if won["rebootmgr"] == 0 || won["python"] == 0 {
				t.Fatalf("one side never won: %v", won)
			}
		})
	}
}

// TestPythonLockAtTheLastCheck: a Python node that takes its session lock after rebootmgr took
// its place (here: while the reboot is announced, just before the last look) holds it back:
// the node keeps its place, preparing, and does not reboot; the Python node, seeing the marker,
// exits 4; then the node goes on.
func TestPythonLockAtTheLastCheck(t *testing.T) {
	n, py := mixedPair(t, "default", "")
	looked, goOn := make(chan struct{}), make(chan struct{})
	py.acquired = func() { close(looked); <-goOn }
	exit := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() { exit <- py.run() }()
		<-looked
	}))
	t.Cleanup(srv.Close)
	n.expect(n.run("reboot", "--notify-url", srv.URL), exitLockHeld, "keeps its place", py.lockKey())
	if h := n.holder("n00"); h.Phase != lock.Preparing || n.rebootCount() != 0 {
		t.Fatalf("after the last check: %+v, %d reboots", n.lockRecord(), n.rebootCount())
	}
	close(goOn)
	if code := <-exit; code != pyExitLockHeld || py.rebootCount() != 0 {
		t.Fatalf("python node: exit %d, %d reboots", code, py.rebootCount())
	}
	n.expect(n.run("reboot"), 0, "reboot started")
}

// TestMarkersGoWithThePlace: rebootmgr's markers go whenever the node's place goes: a pre-boot
// task that fails, and an operator's unlock.
func TestMarkersGoWithThePlace(t *testing.T) {
	tests := []struct {
		name string
		// lose takes the node's place once it reboots or prepares; it returns the run's result.
		lose func(n *testNode) result
		code int
	}{
		{"a pre-boot task fails", func(n *testNode) result {
			seen := filepath.Join(n.dir, "seen")
			n.task("pre", "10-see", fmt.Sprintf("%s kv get -http-addr=%s %s > %s", consultest.Binary(n.t), n.agent.HTTPAddr, n.keys().LegacyMarker(), seen))
			n.task("pre", "20-fail", "exit 1")
			r := n.run("reboot")
			if data, err := os.ReadFile(seen); err != nil || string(data) != "[rebootmgr] n1\n" {
				n.t.Fatalf("the marker while the tasks ran: %q %v", data, err)
			}
			return r
		}, exitTaskFailed},
		{"unlock", func(n *testNode) result {
			n.expect(n.run("reboot"), 0, "reboot started")
			return n.run("unlock", "n1", "--force")
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := dev(t)
			if r := tt.lose(n); r.code != tt.code {
				t.Fatalf("want exit %d, got %s", tt.code, r)
			}
			for _, key := range []string{n.keys().LegacyMarker(), n.keys().LegacyGroupMarker("default")} {
				if p := n.get(key); p != nil {
					t.Fatalf("%s left: %q", key, p.Value)
				}
			}
		})
	}
}

// TestPythonNodeAsThePythonCode pins the Python node of these tests to what the Python
// rebootmgr 0.0.32 with consul_lib 0.1.8 and python-consul 0.7.1 leaves in Consul, as read
// from a real run (scripts/python-race): a session on its agent's node without checks, TTL
// 600s, lock delay 15s, behaviour release; the lock key's value {"state": "done"} without
// flags while held, empty and free after (its LockIndex back to 0 after the second release);
// the marker its host name, without flags.
func TestPythonNodeAsThePythonCode(t *testing.T) {
	n := dev(t)
	py := &pythonNode{t: t, addr: n.agent.HTTPAddr, name: "py-1"}
	py.prepare = func() int {
		p := n.get(py.lockKey())
		if p == nil || string(p.Value) != `{"state": "done"}` || p.Flags != 0 || p.Session == "" || p.LockIndex != 1 {
			t.Errorf("lock key while held: %+v", p)
			return 1
		}
		s, _, err := n.agent.Client.Session().Info(p.Session, nil)
		if err != nil || s == nil {
			t.Fatalf("session %s: %v", p.Session, err)
		}
		if s.Node != "n1" || s.Name != "" || s.TTL != "600s" || s.LockDelay != 15*time.Second || s.Behavior != "release" || len(s.NodeChecks) != 0 || len(s.ServiceChecks) != 0 {
			t.Errorf("session: %+v", s)
		}
		return 0
	}
	if code := py.run(); code != pyExitOK {
		t.Fatalf("exit %d", code)
	}
	if p := n.get(py.lockKey()); p == nil || len(p.Value) != 0 || p.Session != "" || p.Flags != 0 || p.LockIndex != 0 {
		t.Fatalf("lock key after the run: %+v", p)
	}
	if p := n.get(py.markerKey()); p == nil || string(p.Value) != "py-1" || p.Flags != 0 {
		t.Fatalf("marker: %+v", p)
	}
	if sessions, _, _ := n.agent.Client.Session().List(nil); len(sessions) != 0 {
		t.Fatalf("sessions left: %+v", sessions)
	}
}
