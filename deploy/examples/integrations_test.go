package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// standIn is a command that records its arguments, one call a line, and prints answer.
type standIn struct {
	path, calls string
}

func newStandIn(t *testing.T, dir, name, answer string) standIn {
	t.Helper()
	s := standIn{path: filepath.Join(dir, name), calls: filepath.Join(dir, name+".calls")}
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s ' \"$a\"; done >> " + s.calls + "\necho >> " + s.calls + "\nprintf '%s' '" + answer + "'\n"
	if err := os.WriteFile(s.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s standIn) recorded(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(s.calls)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// runTask runs a task as rebootmgr would, with env added to this process's environment.
func runTask(t *testing.T, task string, env ...string) (string, error) {
	t.Helper()
	path, err := filepath.Abs(task)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestIntegrationTasks: each pair of pre- and post-boot tasks calls its command (a stand-in that
// records its arguments) as a reboot needs it, and in a dry run calls nothing and says what it
// would do.
func TestIntegrationTasks(t *testing.T) {
	for _, tt := range []struct {
		name      string
		pre, post string
		// command is the variable naming the command; answer what the stand-in prints.
		command, answer string
		env             []string
		wantPre         []string
		wantPost        []string
		dryRun          string
	}{
		{
			name: "nomad", pre: "pre_boot_tasks/40-nomad-drain", post: "post_boot_tasks/60-nomad-eligible",
			command: "NOMAD", env: []string{"DEADLINE=90s"},
			wantPre:  []string{"node drain -self -enable -deadline 90s -yes"},
			wantPost: []string{"node eligibility -self -enable"},
			dryRun:   "would run",
		},
		{
			name: "kubernetes", pre: "pre_boot_tasks/40-kubernetes-drain", post: "post_boot_tasks/60-kubernetes-uncordon",
			command: "KUBECTL", env: []string{"K8S_NODE=worker-3", "DRAIN_TIMEOUT=90s", "READY_TIMEOUT=60s"},
			wantPre:  []string{"drain worker-3 --ignore-daemonsets --delete-emptydir-data --timeout=90s"},
			wantPost: []string{"wait --for=condition=Ready node/worker-3 --timeout=60s", "uncordon worker-3"},
			dryRun:   "would run",
		},
		{
			name: "alertmanager", pre: "pre_boot_tasks/10-alertmanager-silence", post: "post_boot_tasks/90-alertmanager-expire",
			command: "CURL", answer: `{"silenceID":"5e1ec7ed-0001"}`,
			env:      []string{"HOST=db-3.example.com", "ALERTMANAGER_URL=http://am:9093", "SILENCE_MINUTES=45"},
			wantPre:  []string{"-fsS -X POST -H Content-Type: application/json -d "},
			wantPost: []string{"-fsS -X DELETE http://am:9093/api/v2/silence/5e1ec7ed-0001"},
			dryRun:   "would silence instance=~\"db-3.example.com(:[0-9]+)?\" in http://am:9093 until",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := newStandIn(t, dir, "cmd", tt.answer)
			env := append([]string{tt.command + "=" + cmd.path, "STATE_DIR=" + filepath.Join(dir, "state")}, tt.env...)

			out, err := runTask(t, tt.pre, append(env, "REBOOTMGR_DRY_RUN=1")...)
			if err != nil || !strings.Contains(out, "dry run: "+tt.dryRun) || cmd.recorded(t) != nil {
				t.Fatalf("pre-boot dry run: %v, calls %q\n%s", err, cmd.recorded(t), out)
			}

			if out, err := runTask(t, tt.pre, env...); err != nil {
				t.Fatalf("pre-boot: %v\n%s", err, out)
			}
			calls := cmd.recorded(t)
			if len(calls) != len(tt.wantPre) {
				t.Fatalf("pre-boot calls %q, want %q", calls, tt.wantPre)
			}
			for i, want := range tt.wantPre {
				if !strings.HasPrefix(strings.TrimSpace(calls[i]), want) {
					t.Fatalf("pre-boot call %q, want %q", calls[i], want)
				}
			}

			out, err = runTask(t, tt.post, append(env, "REBOOTMGR_DRY_RUN=1")...)
			if err != nil || !strings.Contains(out, "dry run: would") || len(cmd.recorded(t)) != len(calls) {
				t.Fatalf("post-boot dry run: %v, calls %q\n%s", err, cmd.recorded(t), out)
			}

			if out, err := runTask(t, tt.post, env...); err != nil {
				t.Fatalf("post-boot: %v\n%s", err, out)
			}
			post := cmd.recorded(t)[len(calls):]
			if len(post) != len(tt.wantPost) {
				t.Fatalf("post-boot calls %q, want %q", post, tt.wantPost)
			}
			for i, want := range tt.wantPost {
				if strings.TrimSpace(post[i]) != want {
					t.Fatalf("post-boot call %q, want %q", post[i], want)
				}
			}
		})
	}
}

// TestAlertmanagerSilence: the silence covers this host until its end time, its id outlives
// the reboot in the state directory, a second run replaces the silence an earlier one left, and
// the post-boot task, run twice, expires it once.
func TestAlertmanagerSilence(t *testing.T) {
	dir := t.TempDir()
	curl := newStandIn(t, dir, "curl", `{"silenceID":"s-1"}`)
	state := filepath.Join(dir, "state")
	env := []string{"CURL=" + curl.path, "STATE_DIR=" + state, "HOST=db-3", "ALERTMANAGER_URL=http://am:9093", "MATCH_LABEL=host", "MATCH_REGEX=db-3"}
	for range 2 {
		if out, err := runTask(t, "pre_boot_tasks/10-alertmanager-silence", env...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	calls := curl.recorded(t)
	if len(calls) != 3 || !strings.Contains(calls[1], "-X DELETE http://am:9093/api/v2/silence/s-1") {
		t.Fatalf("calls %q: want a silence, the old one expired, a new one", calls)
	}
	for _, want := range []string{
		`"matchers":[{"name":"host","value":"db-3","isRegex":true,"isEqual":true}]`,
		`"endsAt":"20`, `"createdBy":"rebootmgr"`, `"comment":"rebootmgr: rebooting db-3"`,
		"http://am:9093/api/v2/silences",
	} {
		if !strings.Contains(calls[0], want) {
			t.Fatalf("the POST %q lacks %q", calls[0], want)
		}
	}
	if data, err := os.ReadFile(filepath.Join(state, "alertmanager-silence")); err != nil || strings.TrimSpace(string(data)) != "s-1" {
		t.Fatalf("state: %q, %v", data, err)
	}
	for range 2 {
		if out, err := runTask(t, "post_boot_tasks/90-alertmanager-expire", env...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	if calls := curl.recorded(t); len(calls) != 4 || !strings.Contains(calls[3], "-X DELETE http://am:9093/api/v2/silence/s-1") {
		t.Fatalf("calls %q: want the silence expired once", calls)
	}
	// An answer without an id fails the task: the node does not reboot unsilenced.
	bad := newStandIn(t, t.TempDir(), "curl", `{"error":"bad matcher"}`)
	if out, err := runTask(t, "pre_boot_tasks/10-alertmanager-silence", "CURL="+bad.path, "STATE_DIR="+t.TempDir(), "HOST=db-3"); err == nil || !strings.Contains(out, "no silence id") {
		t.Fatalf("an answer without an id: %v\n%s", err, out)
	}
}
