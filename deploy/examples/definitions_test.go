package examples

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// scriptSetting is the agent setting the README says the shipped definitions need.
const scriptSetting = "enable_local_script_checks = true"

// TestServiceDefinitionsLoad: the shipped service definitions use script checks, which an agent
// as packaged refuses, and refuses to start with ("Scripts are disabled on this agent"); with
// the setting the README names, an agent loads every one of them, each service with its check.
func TestServiceDefinitionsLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("consul.d", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no service definitions in consul.d: %v", err)
	}
	dir := t.TempDir()
	var services []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var def struct{ Service struct{ Name string } }
		if err := json.Unmarshal(data, &def); err != nil || def.Service.Name == "" {
			t.Fatalf("%s: no service definition: %v", f, err)
		}
		services = append(services, def.Service.Name)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "`"+scriptSetting+"`") || !strings.Contains(string(readme), "Scripts are disabled on this agent") {
		t.Fatalf("README.md does not name the agent setting %q the examples need, nor what a stock agent says without it", scriptSetting)
	}

	if _, err := consultest.DevStock(t, "stock", "-config-dir", dir); err == nil || !strings.Contains(err.Error(), "Scripts are disabled on this agent") {
		t.Fatalf("an agent without %s started with the examples, or failed otherwise: %v", scriptSetting, err)
	}
	agent, err := consultest.DevStock(t, "n1", "-config-dir", dir, "-hcl", scriptSetting)
	if err != nil {
		t.Fatalf("an agent with %s: %v", scriptSetting, err)
	}
	loaded, err := agent.Client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	checks, err := agent.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range services {
		svc, ok := loaded[name]
		if !ok || !slices.Contains(svc.Tags, "rebootmgr") {
			t.Errorf("service %s not loaded with the tag rebootmgr: %+v", name, svc)
			continue
		}
		has := false
		for _, c := range checks {
			has = has || c.ServiceID == svc.ID
		}
		if !has {
			t.Errorf("service %s loaded without its check", name)
		}
	}
}
