package main

import (
	"fmt"
	"os"
	"strings"
)

// This machine and the local agent's node. Without --node, a command takes the node of the
// Consul agent it talks to for its own; from a workstation pointed at another machine's agent
// (CONSUL_HTTP_ADDR), a command that acts as this node would act as that node here: run its
// tasks and its reboot command on the workstation. So the agent's node is this machine only when
// it bears the machine's host name (whole, or short as the Python rebootmgr took it, up to the
// first dot); --node says it on purpose, for a machine whose agent names it otherwise.

// hostNames are this machine's host name and its short form.
func (e env) hostNames() (full, short string, err error) {
	hostname := e.hostname
	if hostname == nil {
		hostname = os.Hostname
	}
	if full, err = hostname(); err != nil {
		return "", "", fmt.Errorf("this machine's host name: %w", err)
	}
	short, _, _ = strings.Cut(full, ".")
	return full, short, nil
}

// isThisMachine says whether node, the local agent's node, is this machine; host is the
// machine's short host name.
func (e env) isThisMachine(node string) (yes bool, host string, err error) {
	full, short, err := e.hostNames()
	if err != nil {
		return false, "", err
	}
	return strings.EqualFold(node, full) || strings.EqualFold(node, short), short, nil
}

// requireThisMachine refuses to act as the agent's node, without --node, on a machine that is
// not that node.
func requireThisMachine(e env, agentNode string) error {
	here, host, err := e.isThisMachine(agentNode)
	if err != nil || here {
		return err
	}
	return fmt.Errorf("%w: this machine is %s, but the consul agent rebootmgr talks to is node %s: acting as %s would run its tasks and reboot command here; run it on %s (rebootmgr trigger %s asks it to reboot from anywhere), or, if this machine is %s under another host name, say so with --node %s (REBOOTMGR_NODE=%s in %s)",
		errUsage, host, agentNode, agentNode, agentNode, agentNode, agentNode, agentNode, agentNode, DefaultConfigFile)
}
