package main

import "fmt"

// commandSynonyms are the words an operator used to another tool (systemctl, locksmithctl,
// kured's annotations) types for one of rebootmgr's commands.
func commandSynonyms() map[string]string {
	return map[string]string{
		"start":    "resume",
		"unpause":  "resume",
		"continue": "resume",
		"unstop":   "resume",
		"pause":    "stop",
		"halt":     "stop",
		"request":  "trigger",
		"ask":      "trigger",
		"withdraw": "cancel",
		"release":  "unlock",
		"set-max":  "limit",
		"max":      "limit",
		"log":      "history",
		"logs":     "history",
		"show":     "status",
		"list":     "status",
		"ls":       "status",
		"info":     "status",
		"explain":  "check",
		"why":      "check",
		"run":      "reboot",
		"remove":   "forget",
	}
}

// didYouMean is what an unknown command may have meant ("" when nothing is near): a synonym of
// another tool's, or a command a typo or two away.
func didYouMean(name string) string {
	if c, ok := commandSynonyms()[name]; ok {
		return c
	}
	best, bestDist := "", 3
	for _, c := range commands() {
		if d := distance(name, c.name); d < bestDist && d < len(c.name) {
			best, bestDist = c.name, d
		}
	}
	return best
}

// unknownCommand is the reason an unknown command gets, with what it may have meant.
func unknownCommand(name string) string {
	if c := didYouMean(name); c != "" {
		return fmt.Sprintf("rebootmgr: unknown command %q: did you mean %s? (rebootmgr %s -h: what it does; rebootmgr help: the commands)", name, c, c)
	}
	return fmt.Sprintf("rebootmgr: unknown command %q (see rebootmgr help)", name)
}
