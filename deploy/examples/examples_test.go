// Package examples holds the shipped check scripts and service definitions; its test runs each
// script as a real Consul script check, with stand-ins for the commands it calls.
package examples

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// stub writes a command that prints out and exits with code.
func stub(t *testing.T, dir, name, out string, code int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\ncat <<'END'\n%s\nEND\nexit %d\n", out, code)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckScripts(t *testing.T) {
	dir := t.TempDir()
	mysql := func(ready, state string) string {
		// The stand-in answers both queries the galera check asks, by the query it gets.
		path := filepath.Join(dir, "mysql-"+ready+"-"+strings.ReplaceAll(state, "/", "-"))
		script := fmt.Sprintf("#!/bin/sh\ncase \"$*\" in *wsrep_ready*) echo 'wsrep_ready %s' ;; *) echo 'wsrep_local_state_comment %s' ;; esac\n", ready, state)
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	zk := func(ruok, mode string) string {
		path := filepath.Join(dir, "zk-"+ruok+"-"+mode)
		script := fmt.Sprintf("#!/bin/sh\nread w\ncase \"$w\" in ruok) printf '%s' ;; srvr) printf 'Zookeeper version: 3.8\\nMode: %s\\n' ;; esac\n", ruok, mode)
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name   string
		script string
		env    string
		status string
		output string
	}{
		{"galera synced", "galera", "MYSQL=" + mysql("ON", "Synced"), "passing", "synced"},
		{"galera donor", "galera", "MYSQL=" + mysql("ON", "Donor/Desynced"), "critical", "not synced"},
		{"galera not ready", "galera", "MYSQL=" + mysql("OFF", "Synced"), "critical", "wsrep not ready"},
		{"zookeeper follower", "zookeeper", "ZK_CMD=" + zk("imok", "follower"), "passing", "mode follower"},
		{"zookeeper standalone", "zookeeper", "ZK_CMD=" + zk("imok", "standalone"), "critical", "standalone"},
		{"zookeeper silent", "zookeeper", "ZK_CMD=" + zk("", "leader"), "critical", "imok"},
		{"cassandra all UN", "cassandra", "NODETOOL=" + stub(t, dir, "nodetool-ok", "UN  10.0.0.1  1 GiB  256  ?  a  r1\nUN  10.0.0.2  1 GiB  256  ?  b  r1", 0), "passing", "2 nodes UN"},
		{"cassandra one down", "cassandra", "NODETOOL=" + stub(t, dir, "nodetool-dn", "UN  10.0.0.1  1 GiB  256  ?  a  r1\nDN  10.0.0.3  1 GiB  256  ?  c  r1", 0), "critical", "DN 10.0.0.3"},
		{"rabbitmq healthy", "rabbitmq", "RABBITMQ_DIAGNOSTICS=" + stub(t, dir, "diag-ok", "ok", 0), "passing", "no alarms"},
		{"rabbitmq alarm", "rabbitmq", "RABBITMQ_DIAGNOSTICS=" + stub(t, dir, "diag-alarm", "memory alarm in effect", 69), "critical", "memory alarm"},
		{"quobyte green", "quobyte", "QUOBYTE_HEALTH=" + stub(t, dir, "q-green", "GREEN", 0), "passing", "green"},
		{"quobyte yellow", "quobyte", "QUOBYTE_HEALTH=" + stub(t, dir, "q-yellow", "YELLOW: rebalancing", 0), "warning", "yellow"},
		{"dkms installed", "dkms", "DKMS=" + stub(t, dir, "dkms-ok", "zfs/2.1.11, 6.1.0-27-amd64, x86_64: installed", 0), "passing", "dkms ok"},
		{"dkms built only", "dkms", "DKMS=" + stub(t, dir, "dkms-built", "zfs/2.1.11, 6.1.0-28-amd64, x86_64: built", 0), "critical", "not installed"},
		{"not updating", "not-updating", "FUSER=" + stub(t, dir, "fuser-free", "", 1) + " PGREP=" + stub(t, dir, "pgrep-none", "", 1), "passing", "not updating"},
		{"dpkg running", "not-updating", "FUSER=" + stub(t, dir, "fuser-held", "1234", 0) + " PGREP=" + stub(t, dir, "pgrep-none2", "", 1), "critical", "dpkg is running"},
		{"unattended-upgrades", "not-updating", "FUSER=" + stub(t, dir, "fuser-free2", "", 1) + " PGREP=" + stub(t, dir, "pgrep-uu", "4321", 0), "critical", "unattended-upgrades"},
	}
	agent := consultest.Dev(t, "n1")
	for i, tt := range tests {
		script, err := filepath.Abs(filepath.Join("checks", tt.script))
		if err != nil {
			t.Fatal(err)
		}
		initial := "critical" // start from another status than the one the script must produce
		if tt.status == "critical" {
			initial = "passing"
		}
		args := append([]string{"/usr/bin/env"}, strings.Fields(tt.env)...)
		service := fmt.Sprintf("svc%d", i)
		err = agent.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: service, Name: service, Tags: []string{"rebootmgr"},
			Check: &api.AgentServiceCheck{CheckID: service, Args: append(args, script), Interval: "1s", Timeout: "5s", Status: initial},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			service := fmt.Sprintf("svc%d", i)
			agent.WaitCheck("n1", service, service, tt.status)
			checks, _, err := agent.Client.Health().Checks(service, (&api.QueryOptions{}).WithContext(context.Background()))
			if err != nil || len(checks) != 1 {
				t.Fatalf("checks of %s: %v %v", service, checks, err)
			}
			if !strings.Contains(checks[0].Output, tt.output) {
				t.Fatalf("output %q does not say %q", checks[0].Output, tt.output)
			}
		})
	}
}
