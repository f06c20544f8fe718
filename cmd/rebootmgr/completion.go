package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// nodeCommands take a node's name as their argument.
var nodeCommands = []string{"trigger", "cancel", "disable", "enable", "unlock", "forget", "history"}

// groupCommands take a group's name as their first argument.
var groupCommands = []string{"limit"}

func runCompletion(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: completion takes bash or zsh (e.g. source <(rebootmgr completion bash))", errUsage)
	}
	switch args[0] {
	case "bash", "zsh":
		script, err := completionScript(ctx, args[0])
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, script)
		return err
	case "nodes", "groups", "datacenters":
		// Asked by the scripts while completing: names from Consul, quickly, or none.
		return completeNames(ctx, args[0], e, stdout, stderr)
	}
	return fmt.Errorf("%w: completion takes bash or zsh, not %q", errUsage, args[0])
}

// commandFlags are a command's flags, from the flag set it parses with, so that they cannot
// drift from its definitions.
func commandFlags(c command) []string {
	var out []string
	if c.flags != nil {
		c.flags().VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
	}
	return out
}

// completionScript is the completion for shell (bash or zsh), made from every command's flags.
func completionScript(ctx context.Context, shell string) (string, error) {
	var names []string
	var cases strings.Builder
	for _, c := range commands() {
		names = append(names, c.name)
		var words []string
		switch c.name {
		case "completion":
			words = []string{"bash", "zsh"}
		case "man", "version":
			// They take no flags.
			words = []string{"--help"}
		default:
			words = append(commandFlags(c), "--help")
		}
		fmt.Fprintf(&cases, "    %s) words=%q ;;\n", c.name, strings.Join(words, " "))
	}
	sort.Strings(names)
	body := fmt.Sprintf(`  local cmd=%[1]s prev=%[2]s cur=%[3]s words
  case "$prev" in
    --node) words=$(rebootmgr completion nodes 2>/dev/null) ;;
    --group) words=$(rebootmgr completion groups 2>/dev/null) ;;
    --datacenter) words=$(rebootmgr completion datacenters 2>/dev/null) ;;
    *)
      case "$cmd" in
%[4]s      esac
      case "$cmd:$cur" in
        %[5]s) words="$words $(rebootmgr completion nodes 2>/dev/null)" ;;
        %[6]s) [ "$prev" = "$cmd" ] && words="$words $(rebootmgr completion groups 2>/dev/null)" ;;
      esac ;;
  esac
`, "${COMP_WORDS[1]}", "${COMP_WORDS[COMP_CWORD-1]}", "${COMP_WORDS[COMP_CWORD]}", indent(cases.String(), "    "), argCases(nodeCommands), argCases(groupCommands))
	switch shell {
	case "bash":
		return fmt.Sprintf(`# bash completion for rebootmgr: source <(rebootmgr completion bash)
_rebootmgr() {
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %[1]q -- "${COMP_WORDS[1]}"))
    return
  fi
%[2]s  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _rebootmgr rebootmgr
`, strings.Join(names, " "), body), nil
	case "zsh":
		zbody := strings.NewReplacer(
			"${COMP_WORDS[1]}", "${words[2]}",
			"${COMP_WORDS[COMP_CWORD-1]}", "${words[CURRENT-1]}",
			"${COMP_WORDS[COMP_CWORD]}", "${words[CURRENT]}",
			"local cmd", "local -a reply; local cmd",
			" words", " ws", `"$words`, `"$ws`, "words=", "ws=",
		).Replace(body)
		return fmt.Sprintf(`#compdef rebootmgr
# zsh completion for rebootmgr: rebootmgr completion zsh > "${fpath[1]}/_rebootmgr" (autoloaded),
# or source <(rebootmgr completion zsh) after compinit.
_rebootmgr() {
  if (( CURRENT == 2 )); then
    compadd -- %[1]s
    return
  fi
%[2]s  compadd -- ${=ws}
}
if [ "$funcstack[1]" = "_rebootmgr" ]; then
  _rebootmgr "$@"
else
  compdef _rebootmgr rebootmgr
fi
`, strings.Join(names, " "), zbody), nil
	}
	return "", fmt.Errorf("%w: completion takes bash or zsh, not %q", errUsage, shell)
}

// argCases is the shell pattern of the commands, while a word that is no flag is completed.
func argCases(commands []string) string {
	var out []string
	for _, c := range commands {
		out = append(out, c+":[!-]*", c+":")
	}
	return strings.Join(out, "|")
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// completeNames prints the nodes Consul knows, the groups rebootmgr knows, or the datacenters
// Consul knows, one a line. It
// gives up after two seconds: a shell waits for it.
func completeNames(ctx context.Context, what string, e env, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	fs, g := connFlagSet("completion")
	if err := parse(fs.FlagSet, nil, e); err != nil {
		return err
	}
	o, err := g.operator(e, stderr)
	if err != nil {
		return err
	}
	names := []string{}
	switch what {
	case "nodes":
		nodes, err := o.store.Nodes(ctx)
		if err != nil {
			return err
		}
		names = append(names, nodes...)
	case "groups":
		groups, err := o.store.Groups(ctx)
		if err != nil {
			return err
		}
		names = append(names, groups...)
	case "datacenters":
		dcs, err := g.datacenters(ctx, e)
		if err != nil {
			return err
		}
		names = append(names, dcs...)
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		fmt.Fprintln(stdout, n)
	}
	return nil
}
