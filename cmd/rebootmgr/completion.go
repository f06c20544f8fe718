package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

func runCompletion(_ context.Context, args []string, _ env, stdout, _ io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: completion takes bash or zsh (e.g. source <(rebootmgr completion bash))", errUsage)
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	flags := "--node --prefix --consul-addr --log-format --log-level --json --reason --force --dry-run --check-triggers --settle --tasks-dir --task-timeout --reboot-command --reboot-required-file --reboot-required-command --reboot-required-command-timeout --min-reboot-interval --boot-id-file --lock-file --interval --reboot-timeout --enabled --help"
	switch args[0] {
	case "bash":
		fmt.Fprintf(stdout, `# bash completion for rebootmgr: source <(rebootmgr completion bash)
_rebootmgr() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "%s" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "%s" -- "$cur"))
  fi
}
complete -F _rebootmgr rebootmgr
`, strings.Join(names, " "), flags)
	case "zsh":
		fmt.Fprintf(stdout, `#compdef rebootmgr
# zsh completion for rebootmgr: rebootmgr completion zsh > "${fpath[1]}/_rebootmgr"
_rebootmgr() {
  if (( CURRENT == 2 )); then
    compadd -- %s
  else
    compadd -- %s
  fi
}
compdef _rebootmgr rebootmgr
`, strings.Join(names, " "), flags)
	default:
		return fmt.Errorf("%w: completion takes bash or zsh, not %q", errUsage, args[0])
	}
	return nil
}
