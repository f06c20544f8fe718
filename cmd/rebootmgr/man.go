package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rebootmgr/rebootmgr/ending"
)

// runMan prints rebootmgr(8), made from the commands' own help so that it cannot drift from it.
func runMan(ctx context.Context, _ []string, e env, stdout, _ io.Writer) error {
	var b strings.Builder
	b.WriteString(".TH REBOOTMGR 8 \"\" \"rebootmgr\" \"System Administration\"\n")
	b.WriteString(".SH NAME\nrebootmgr \\- reboot the nodes of a Consul cluster one at a time, when it is safe\n")
	b.WriteString(".SH SYNOPSIS\n.B rebootmgr\n\\fICOMMAND\\fR [\\fIFLAGS\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n")
	var top bytes.Buffer
	usage(&top)
	b.WriteString(preformatted(top.String()))
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands() {
		if c.name == "man" || c.name == "version" || c.name == "completion" {
			continue
		}
		var help bytes.Buffer
		run(ctx, []string{c.name, "-h"}, env{lookup: func(string) (string, bool) { return "", false }}, &help, io.Discard)
		fmt.Fprintf(&b, ".SS %s\n%s\n", c.name, roffEscape(c.summary))
		b.WriteString(preformatted(help.String()))
	}
	b.WriteString(".SH EXIT STATUS\n")
	b.WriteString(exitStatus())
	b.WriteString(".SH FILES\n")
	for _, f := range []struct{ path, what string }{
		{DefaultConfigFile, "the settings of every command on this node, as NAME=VALUE lines (REBOOTMGR_<FLAG>, CONSUL_HTTP_*): the daemon, check, status and the operator's commands read the same ones; rebootmgr config shows them and where each comes from"},
		{"/etc/rebootmgr/pre_boot_tasks/, /etc/rebootmgr/post_boot_tasks/", "tasks, run in name order, before the reboot and after it (owned by root, not writable by group or others)"},
		{"/var/run/reboot_required, /var/run/reboot-required, /run/reboot-needed", "request a reboot of this node (--reboot-required-file; --reboot-required-command asks a command too)"},
		{"/run/rebootmgr.lock", "held while rebootmgr acts on this node (--lock-file); /run/rebootmgr.reboot notes that the reboot command ran on this boot"},
		{"/proc/sys/kernel/random/boot_id", "the boot id, which tells a reboot that happened from one that did not (--boot-id-file)"},
		{"/etc/kernel/postinst.d/zz-rebootmgr", "the package's kernel hook: a new kernel writes the first reboot-required file"},
		{"/etc/default/rebootmgr-fleetlock", "the settings of the FleetLock server as the package's rebootmgr-fleetlock.service runs it (REBOOTMGR_CONFIG): REBOOTMGR_LISTEN and the tokens; never enabled by the package"},
	} {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", f.path, roffEscape(f.what))
	}
	b.WriteString(".SH ENVIRONMENT\n")
	for _, v := range []struct{ name, what string }{
		{"REBOOTMGR_<FLAG>", "any flag not given on the command line, its name in capitals with dashes as underscores (REBOOTMGR_REBOOT_WINDOW); a list separated by ';' (windows, blackouts), ':' (files) or newlines (reboot-required commands); the environment wins over the configuration file. A REBOOTMGR_* name that is no setting of any command, in the file or the environment, is a usage error naming where it was set and the nearest known name"},
		{"REBOOTMGR_CONFIG", "the configuration file to read instead of " + DefaultConfigFile + " (empty: none)"},
		{"REBOOTMGR_DRY_RUN", "set to 1 for the tasks of a --dry-run: a task must then change nothing"},
		{"REBOOTMGR_NODE, REBOOTMGR_PHASE", "given to tasks: the node, and pre or post"},
		{"CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_HTTP_SSL, CONSUL_TLS_SERVER_NAME", "how to reach the Consul agent, as Consul's own commands read them (also from the configuration file; a token the environment gives, in either form, wins over the file's); an ACL refusal names the token's source"},
		{"NOTIFY_SOCKET", "set by systemd: the daemon tells it when it is ready and its one-line status"},
		{"NO_COLOR", "status prints no colours"},
		{"SUDO_USER, USER", "who an operator's command names in the keys and the history it writes"},
	} {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", v.name, roffEscape(v.what))
	}
	b.WriteString(".SH SEE ALSO\n.BR consul (1),\n.BR systemd.service (5)\n")
	_, err := io.WriteString(stdout, b.String())
	return err
}

func preformatted(s string) string {
	return ".nf\n" + roffEscape(strings.TrimRight(s, "\n")) + "\n.fi\n"
}

// roffEscape keeps text literal in roff: backslashes, and lines that would start a request.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// exitStatus is the manual's table of exit codes: success, an error, each gate's ending (see
// ending.List) by its code, and a usage error.
func exitStatus() string {
	type exit struct {
		code int
		what string
	}
	exits := []exit{
		{exitOK, "rebooted, finished after a reboot, or nothing to do"},
		{exitError, "error: Consul unreachable or denied, bad configuration (a malformed quorum tag too), unsafe task"},
	}
	endings := ending.List()
	slices.SortFunc(endings, func(a, b ending.Ending) int { return a.Exit - b.Exit })
	for _, e := range endings {
		exits = append(exits, exit{e.Exit, e.Says})
	}
	var b strings.Builder
	for _, x := range append(exits, exit{exitUsage, "usage error"}) {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s\n", x.code, roffEscape(x.what))
	}
	return b.String()
}
