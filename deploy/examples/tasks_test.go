package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// computeNode is a compute host with stand-ins for openstack (which logs its calls) and virsh
// (which lists VMs until they have been migrated away, or forever).
type computeNode struct {
	t   *testing.T
	dir string
	log string
	env []string
}

func newComputeNode(t *testing.T, vmsLeave bool) *computeNode {
	dir := t.TempDir()
	c := &computeNode{t: t, dir: dir, log: filepath.Join(dir, "calls")}
	openstack := "#!/bin/sh\necho \"$*\" >> " + c.log + "\ncase \"$*\" in 'server list'*) printf 'vm-1\\nvm-2\\n' ;; esac\n"
	virsh := "#!/bin/sh\n"
	if vmsLeave {
		// The VMs are gone once both migrations were asked for.
		virsh += "[ $(grep -c 'server migrate' " + c.log + ") -ge 2 ] && exit 0\n"
	}
	virsh += "printf 'instance-1\\ninstance-2\\n'\n"
	for name, body := range map[string]string{"openstack": openstack, "virsh": virsh} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.env = append(os.Environ(), "OPENSTACK="+filepath.Join(dir, "openstack"), "VIRSH="+filepath.Join(dir, "virsh"),
		"HOST=compute-17", "WAIT_INTERVAL=0.05", "WAIT_TIMEOUT=1")
	return c
}

func (c *computeNode) run(task string, extra ...string) (string, error) {
	cmd := exec.Command(task)
	cmd.Env = append(c.env, extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *computeNode) calls() string {
	data, _ := os.ReadFile(c.log)
	return string(data)
}

func TestOpenStackTasks(t *testing.T) {
	evacuate, _ := filepath.Abs("pre_boot_tasks/50-openstack-evacuate")
	enable, _ := filepath.Abs("post_boot_tasks/50-openstack-enable")

	c := newComputeNode(t, true)
	out, err := c.run(evacuate)
	if err != nil {
		t.Fatalf("evacuate: %v\n%s", err, out)
	}
	calls := c.calls()
	for _, want := range []string{"compute service set --disable --disable-reason rebootmgr: rebooting compute-17 nova-compute", "server migrate --live-migration vm-1", "server migrate --live-migration vm-2"} {
		if !strings.Contains(calls, want) {
			t.Fatalf("evacuate did not call %q:\n%s", want, calls)
		}
	}
	if !strings.Contains(out, "no VM runs on compute-17") {
		t.Fatalf("evacuate output: %s", out)
	}
	if out, err := c.run(enable); err != nil || !strings.Contains(c.calls(), "compute service set --enable compute-17 nova-compute") {
		t.Fatalf("enable: %v\n%s\n%s", err, out, c.calls())
	}

	stuck := newComputeNode(t, false)
	out, err = stuck.run(evacuate)
	if err == nil || !strings.Contains(out, "VMs still running after 1s: instance-1 instance-2") {
		t.Fatalf("evacuate with VMs that stay: %v\n%s", err, out)
	}

	dry := newComputeNode(t, true)
	out, err = dry.run(evacuate, "REBOOTMGR_DRY_RUN=1")
	if err != nil || strings.Contains(dry.calls(), "service set") || !strings.Contains(out, "would disable") {
		t.Fatalf("dry run changed something: %v\n%s\n%s", err, out, dry.calls())
	}
}
