package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

// runMan prints rebootmgr(8), made from the commands' own help so that it cannot drift from it.
func runMan(ctx context.Context, _ []string, e env, stdout, _ io.Writer) error {
	var b strings.Builder
	b.WriteString(".TH REBOOTMGR 8 \"\" \"rebootmgr\" \"System Administration\"\n")
	b.WriteString(".SH NAME\nrebootmgr \\- reboot the nodes of a Consul cluster one at a time, when it is safe\n")
	b.WriteString(".SH SYNOPSIS\n.B rebootmgr\n[\\fICOMMAND\\fR] [\\fIFLAGS\\fR]\n")
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
	for _, x := range []struct {
		code int
		what string
	}{
		{exitOK, "rebooted, finished after a reboot, or nothing to do"},
		{exitError, "error: Consul unreachable or denied, bad configuration (a malformed quorum tag too), unsafe task"},
		{exitUnhealthy, "health checks failed"},
		{exitWindow, "not now: outside the reboot window, a blackout date, the group's cooldown, or the node's min reboot interval"},
		{exitLockHeld, "another node holds the reboot lock"},
		{exitLockLost, "lost the lock while preparing"},
		{exitTaskFailed, "a task failed or timed out"},
		{exitDisabled, "this node is disabled"},
		{exitStopped, "stop flag set"},
		{exitNotRebooted, "the lock says this node is rebooting, but the boot id did not change"},
		{exitUsage, "usage error"},
	} {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s\n", x.code, roffEscape(x.what))
	}
	b.WriteString(".SH FILES\n.TP\n.I /etc/rebootmgr/pre_boot_tasks/, /etc/rebootmgr/post_boot_tasks/\ntasks, run in name order\n")
	b.WriteString(".TP\n.I /var/run/reboot_required, /var/run/reboot-required, /run/reboot-needed\nrequest a reboot of this node\n")
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
