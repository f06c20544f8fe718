package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/notify"
)

// notifyFlags are where notifications go besides the Consul event, and in what shape.
type notifyFlags struct {
	notifyURL      string
	notifyFormat   string
	notifyTemplate string
}

func (f *notifyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.notifyURL, "notify-url", "", "also POST every notification (reboots started, finished, failed or that did not happen, a failed task, a stop, a resume, an unlock) to this URL, as --notify-format says; a Consul event named rebootmgr is always fired")
	var about []string
	for _, fm := range notify.Formats() {
		about = append(about, fm.Name+": "+fm.About)
	}
	fs.StringVar(&f.notifyFormat, "notify-format", notify.JSON, "what --notify-url takes: "+strings.Join(about, "; "))
	fs.StringVar(&f.notifyTemplate, "notify-template", notify.DefaultTemplate, "the text of a notification in a chat format: a Go text/template over .Kind, .Node, .Group, .Reason and .Time")
}

// notifier tells of node of group (either may be ""), through client's Consul event and the
// URL, logging to log.
func (f *notifyFlags) notifier(client *api.Client, node, group string, log *slog.Logger) (notify.Notifier, error) {
	format, err := notify.ParseFormat(f.notifyFormat, f.notifyURL)
	if err != nil {
		return notify.Notifier{}, fmt.Errorf("%w: --notify-format %s: %v", errUsage, f.notifyFormat, err)
	}
	tmpl, err := notify.ParseTemplate(f.notifyTemplate)
	if err != nil {
		return notify.Notifier{}, fmt.Errorf("%w: --notify-template: %v", errUsage, err)
	}
	return notify.Notifier{
		Client: client, URL: f.notifyURL, Format: format, Template: tmpl, Node: node, Group: group,
		Logger: log.With(logkey.Component, "notify"),
	}, nil
}

// notifyTemplate checks a notification's template.
func notifyTemplate(s string) error {
	_, err := notify.ParseTemplate(s)
	return err
}
