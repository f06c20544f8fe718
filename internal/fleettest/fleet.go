package fleettest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// Service is a service a node runs, with the tags that carry its rebootmgr rules. Its check is
// a Consul script check that passes unless the test made it fail (Node.SetFailing) or the node
// is down.
type Service struct {
	Name string
	Tags []string
}

// Spec is one node of a fleet: its name, role, group and services. A compute has VMs: its
// pre-boot task evacuates them (failing when they are stuck) and its post-boot task lets new
// ones come.
type Spec struct {
	Name     string
	Role     string
	Group    string
	Services []Service
	Compute  bool
}

// Role names.
const (
	Gateway    = "gateway"
	Controller = "controller"
	Compute    = "compute"
)

// OpenStack is a small OpenStack fleet with the constraints of the examples in deploy/:
// gateways (never the only one: min_passing=2), controllers (never when fewer than 3; galera,
// zookeeper, rabbitmq min_passing=3, cassandra max_failing=0), computes in their own group
// with VMs to evacuate (nova-compute max_failing=1), dkms on every node (local_only), and
// quobyte on controllers and computes, one storage cluster across both groups that tolerates
// one failing server (max_failing=1, where the example wants every instance passing: so the
// computes may roll more than one at a time, and the two groups share a quorum).
func OpenStack(gateways, controllers, computes int) []Spec {
	dkms := Service{"dkms", []string{"rebootmgr", "local_only"}}
	quobyte := Service{"quobyte", []string{"rebootmgr", "ignore_maintenance", "max_failing=1"}}
	var specs []Spec
	for i := 1; i <= gateways; i++ {
		specs = append(specs, Spec{Name: fmt.Sprintf("gw%d", i), Role: Gateway, Group: store.DefaultGroup, Services: []Service{
			{"gateway", []string{"rebootmgr", "min_passing=2"}}, dkms,
		}})
	}
	for i := 1; i <= controllers; i++ {
		specs = append(specs, Spec{Name: fmt.Sprintf("ctl%d", i), Role: Controller, Group: store.DefaultGroup, Services: []Service{
			{"controller", []string{"rebootmgr", "min_passing=3"}},
			{"galera", []string{"rebootmgr", "min_passing=3"}},
			{"zookeeper", []string{"rebootmgr", "min_passing=3"}},
			{"cassandra", []string{"rebootmgr", "max_failing=0"}},
			{"rabbitmq", []string{"rebootmgr", "min_passing=3"}},
			quobyte, dkms,
		}})
	}
	for i := 1; i <= computes; i++ {
		specs = append(specs, Spec{Name: fmt.Sprintf("cmp%d", i), Role: Compute, Group: Compute, Compute: true, Services: []Service{
			{"nova-compute", []string{"rebootmgr", "max_failing=1"}}, quobyte, dkms,
		}})
	}
	return specs
}

// VMsPerCompute is how many VMs a compute runs when it is in service.
const VMsPerCompute = 3

// Options configure a fleet.
type Options struct {
	// Binary is rebootmgr (Build).
	Binary string
	// CheckInterval is the interval of every script check (default 1s).
	CheckInterval string
	// DaemonArgs go to every daemon, after the node's own flags.
	DaemonArgs []string
}

// Fleet is a simulated fleet: a Consul server (the first node's agent) and a client agent for
// each further node.
type Fleet struct {
	t     testing.TB
	opts  Options
	Nodes []*Node
}

// Node is one simulated machine. Everything of it lives under Dir.
type Node struct {
	Spec
	Agent  *consultest.Agent
	Dir    string
	Daemon *Daemon

	fleet *Fleet
	boots int
}

// New starts the agents of specs (the first is the server, which keeps its state on disk so
// that it can be restarted), registers each node's services and tasks, and waits until every
// check passes. No daemon runs yet (Start).
func New(t testing.TB, specs []Spec, opts Options) *Fleet {
	t.Helper()
	if opts.CheckInterval == "" {
		opts.CheckInterval = "1s"
	}
	f := &Fleet{t: t, opts: opts}
	var server *consultest.Agent
	for i, spec := range specs {
		var agent *consultest.Agent
		// A node is put in its group as in production: by its agent's node meta.
		var meta []string
		if spec.Group != "" && spec.Group != store.DefaultGroup {
			meta = []string{"-node-meta", store.GroupMeta + ":" + spec.Group}
		}
		if i == 0 {
			// Every client agent connects to the server from 127.0.0.1, which Consul allows
			// 100 RPC connections by default: a fleet of more than about 50 nodes needs more.
			server = consultest.Server(t, spec.Name, append([]string{"-hcl", "limits { rpc_max_conns_per_client = 2000 }"}, meta...)...)
			agent = server
		} else {
			agent = consultest.Client(t, spec.Name, server, meta...)
		}
		n := &Node{Spec: spec, Agent: agent, Dir: t.TempDir(), fleet: f}
		n.setUp()
		f.Nodes = append(f.Nodes, n)
	}
	for _, n := range f.Nodes {
		for _, s := range n.Services {
			n.Agent.WaitCheck(n.Name, s.Name, "service:"+s.Name, "passing")
		}
	}
	return f
}

// Paths of a node's files.
func (n *Node) path(parts ...string) string {
	return filepath.Join(append([]string{n.Dir}, parts...)...)
}

// TasksDir holds the node's pre_boot_tasks and post_boot_tasks.
func (n *Node) TasksDir() string { return n.path("etc") }

// Trigger is the node's reboot-required file.
func (n *Node) Trigger() string { return n.path("run", "reboot_required") }

func (n *Node) setUp() {
	t := n.fleet.t
	t.Helper()
	for _, d := range []string{"etc", "etc/pre_boot_tasks", "etc/post_boot_tasks", "run", "faults"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(n.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.Boot()
	// Every node drains before its reboot: a task the test can make fail or hang.
	n.Task("pre", "10-drain", fmt.Sprintf("[ -e %[1]s ] && { echo drain failed; exit 1; }; while [ -e %[2]s ]; do sleep 0.05; done; true",
		n.fault("task-fails"), n.fault("task-hangs")))
	n.Task("post", "90-undrain", "true")
	if n.Compute {
		n.writeVMs(VMsPerCompute)
		// Evacuate: live-migrate the VMs away and wait until none is left; stuck VMs fail it.
		n.Task("pre", "50-evacuate", fmt.Sprintf("[ -e %[1]s ] && { echo \"$(cat %[2]s) VMs will not migrate\"; exit 1; }; echo 0 > %[2]s; echo evacuated",
			n.fault("vms-stuck"), n.path("vms")))
		n.Task("post", "50-enable", fmt.Sprintf("echo %d > %s", VMsPerCompute, n.path("vms")))
	}
	for _, s := range n.Services {
		out := "echo " + s.Name + " ok"
		if s.Name == "nova-compute" {
			out = fmt.Sprintf("echo \"$(cat %s) VMs running\"", n.path("vms"))
		}
		script := fmt.Sprintf("[ -e %[1]s ] && { echo node down; exit 2; }; [ -e %[2]s ] && { echo %[3]s failing; exit 2; }; %[4]s",
			n.path("down"), n.fault("fail-"+s.Name), s.Name, out)
		n.Agent.RegisterScriptService(s.Name, s.Tags, script, n.fleet.opts.CheckInterval, n.fleet.opts.CheckInterval)
	}
}

func (n *Node) fault(name string) string { return n.path("faults", name) }

// Task writes an executable task of phase ("pre" or "post").
func (n *Node) Task(phase, name, script string) {
	t := n.fleet.t
	t.Helper()
	path := n.path("etc", phase+"_boot_tasks", name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// ConsulArgs are the flags that point a rebootmgr command at this node's agent and group.
func (n *Node) ConsulArgs() []string {
	return []string{"--consul-addr", n.Agent.HTTPAddr, "--group", n.Group}
}

// Args are the flags that point a rebootmgr daemon or reboot at this node's agent and files. It
// runs on the test's machine, whose host name is not the node's: --node says which node it is.
func (n *Node) Args() []string {
	return append(n.ConsulArgs(),
		"--node", n.Name,
		"--log-level", "debug",
		"--tasks-dir", n.TasksDir(),
		"--boot-id-file", n.path("boot_id"),
		"--lock-file", n.path("run", "rebootmgr.lock"),
		"--reboot-command", "date +%s%N >> "+n.path("reboots"),
		"--reboot-required-file", n.Trigger(),
		// A fleet asks its nodes again soon after their reboots.
		"--min-reboot-interval", "0",
	)
}

// Start starts the node's daemon as its own process, with extra flags after the fleet's.
func (n *Node) Start(extra ...string) {
	n.fleet.t.Helper()
	args := append(append(append([]string{"daemon"}, n.Args()...), n.fleet.opts.DaemonArgs...), extra...)
	n.Daemon = StartDaemon(n.fleet.t, n.fleet.opts.Binary, args...)
}

// Boot gives the machine a new boot id, as a reboot does, and brings its services back.
func (n *Node) Boot() {
	t := n.fleet.t
	t.Helper()
	n.boots++
	if err := os.WriteFile(n.path("boot_id"), []byte(fmt.Sprintf("boot-%d\n", n.boots)), 0o644); err != nil {
		t.Fatal(err)
	}
	// /run is a tmpfs: a boot empties it, the daemon's lock file and the note of the reboot
	// command with it.
	for _, f := range []string{n.path("run", "rebootmgr.lock"), n.path("run", "rebootmgr.reboot")} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	n.SetDown(false)
}

// SetDown takes the machine's services down (its checks fail) or brings them back.
func (n *Node) SetDown(down bool) { n.mark(n.path("down"), down) }

// SetFailing makes a service's check fail, or heal.
func (n *Node) SetFailing(service string, failing bool) { n.mark(n.fault("fail-"+service), failing) }

// SetTaskFails makes the node's pre-boot drain task fail, or succeed again.
func (n *Node) SetTaskFails(on bool) { n.mark(n.fault("task-fails"), on) }

// SetTaskHangs makes the node's pre-boot drain task hang (until its timeout), or not.
func (n *Node) SetTaskHangs(on bool) { n.mark(n.fault("task-hangs"), on) }

// SetVMsStuck makes a compute's VMs refuse to migrate, or not.
func (n *Node) SetVMsStuck(on bool) { n.mark(n.fault("vms-stuck"), on) }

func (n *Node) mark(path string, on bool) {
	t := n.fleet.t
	t.Helper()
	if !on {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (n *Node) writeVMs(count int) {
	t := n.fleet.t
	t.Helper()
	if err := os.WriteFile(n.path("vms"), []byte(strconv.Itoa(count)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// VMs is how many VMs run on a compute.
func (n *Node) VMs() int {
	data, err := os.ReadFile(n.path("vms"))
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return v
}

// RebootCount is how often the node's reboot command ran.
func (n *Node) RebootCount() int {
	data, err := os.ReadFile(n.path("reboots"))
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

// RebootTimes are the moments the node's reboot command ran, as the command itself read the
// clock (date +%s%N), oldest first.
func (n *Node) RebootTimes() []time.Time {
	t := n.fleet.t
	t.Helper()
	data, err := os.ReadFile(n.path("reboots"))
	if err != nil {
		return nil
	}
	var out []time.Time
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		ns, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			t.Fatalf("%s: reboot record %q: %v", n.Name, line, err)
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

// KV is the node's agent's key/value store.
func (n *Node) KV() *api.KV { return n.Agent.Client.KV() }

// Keys are rebootmgr's keys.
func (n *Node) Keys() store.Keys { return store.Keys{Prefix: store.DefaultPrefix} }

// Lock reads the lock record of the node's group.
func (n *Node) Lock() lock.Record {
	n.fleet.t.Helper()
	return consultest.Stored(n.fleet.t, n.KV(), n.Keys().GroupLock(n.Group), lock.Decode)
}

// Requested says whether the node's reboot_required key exists.
func (n *Node) Requested() bool {
	t := n.fleet.t
	t.Helper()
	pair, _, err := n.KV().Get(n.Keys().RebootRequired(n.Name), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pair != nil
}

// Request asks for the node's reboot through its reboot_required key.
func (n *Node) Request() {
	t := n.fleet.t
	t.Helper()
	if _, err := n.KV().Put(&api.KVPair{Key: n.Keys().RebootRequired(n.Name)}, nil); err != nil {
		t.Fatal(err)
	}
}

// Groups are the fleet's groups, each with its nodes.
func (f *Fleet) Groups() map[string][]*Node {
	out := map[string][]*Node{}
	for _, n := range f.Nodes {
		out[n.Group] = append(out[n.Group], n)
	}
	return out
}

// Running are the nodes that run service.
func (f *Fleet) Running(service string) []*Node {
	var out []*Node
	for _, n := range f.Nodes {
		for _, s := range n.Services {
			if s.Name == service {
				out = append(out, n)
			}
		}
	}
	return out
}
