package main

import (
	"flag"
	"fmt"
	"io"
)

// flagSet is a command's flags: one flag.FlagSet parses them all, and its help shows them in
// groups by purpose (how to reach Consul and which node this is; what the gates judge; what a
// reboot does; the command's own). Each command builds its own, with only the flags it uses.
type flagSet struct {
	*flag.FlagSet
	groups []flagGroup
}

// flagGroup is a group of a command's flags under its title in the help.
type flagGroup struct {
	title string
	flags *flag.FlagSet
}

func newFlagSet(name string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs.SetOutput(io.Discard)
	return fs
}

// group adds the flags register registers, under title in the help.
func (s *flagSet) group(title string, register func(fs *flag.FlagSet)) {
	g := flag.NewFlagSet(title, flag.ContinueOnError)
	register(g)
	g.VisitAll(func(f *flag.Flag) { s.Var(f.Value, f.Name, f.Usage) })
	s.groups = append(s.groups, flagGroup{title: title, flags: g})
}

// usage prints the command's help to w: synopsis, its flags by group, and examples.
func (s *flagSet) usage(w io.Writer, synopsis, examples string) func() {
	return func() {
		fmt.Fprintf(w, "Usage: %s\n", synopsis)
		if len(s.groups) > 0 {
			fmt.Fprintln(w, "\nFlags (each also settable as REBOOTMGR_<FLAG>):")
		}
		for _, g := range s.groups {
			fmt.Fprintf(w, "\n%s:\n", g.title)
			g.flags.SetOutput(w)
			g.flags.PrintDefaults()
			g.flags.SetOutput(io.Discard)
		}
		if examples != "" {
			fmt.Fprintf(w, "\nExamples:\n%s", examples)
		}
	}
}

// connFlagSet is the flag set of a command that takes no flag but how to reach Consul.
func connFlagSet(name string) (*flagSet, *connFlags) {
	var f connFlags
	fs := newFlagSet(name)
	fs.group("Connection", f.register)
	return fs, &f
}

// registerNode is --node, saying what the node is to the command.
func registerNode(fs *flag.FlagSet, p *string, usage string) {
	fs.StringVar(p, "node", "", usage)
}

// registerGroup is --group, saying what the group is to the command.
func registerGroup(fs *flag.FlagSet, p *string, usage string) {
	fs.StringVar(p, "group", "", usage)
}

// Group titles, shared by the commands.
const (
	connGroup   = "Connection and identity"
	gatesGroup  = "What the gates judge"
	actionGroup = "What a reboot does"
	testGroup   = "For testing rebootmgr itself"
	notifyGroup = "Notifications"
)
