package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/consul/api"
)

// Consul keeps a fleet's keys in each datacenter apart: the daemons of a datacenter read only
// its own, through their local agent. An operator command reaches another datacenter's fleet
// through the same agent (--datacenter), or every datacenter's in turn (--all-datacenters).

// registerDatacenters registers --datacenter and --all-datacenters, of a command that acts on
// what (a fleet's stop flag, its status, ...).
func (g *connFlags) registerDatacenters(fs *flag.FlagSet, what string) {
	fs.StringVar(&g.datacenter, "datacenter", "", "the Consul datacenter whose "+what+" to act on, through the local agent (default: the agent's own)")
	fs.BoolVar(&g.allDatacenters, "all-datacenters", false, "act on the "+what+" of every datacenter Consul knows, one after the other, and say of each what was done or why not (exits non-zero when one was not)")
}

// datacenterName checks the value of --datacenter: a name Consul takes for a datacenter.
func datacenterName(v string) error {
	ok := v != "" && len(v) <= 64
	for _, r := range v {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}
	if !ok {
		return errors.New("want a datacenter's name: letters, digits, dashes and underscores")
	}
	return nil
}

// dcOutcome is what a command did in one datacenter, for --all-datacenters --json: its own
// document, or why there is none.
type dcOutcome struct {
	Datacenter string          `json:"datacenter"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
}

// inDatacenters runs run once, in the datacenter --datacenter names (the agent's own without
// it); with --all-datacenters, once in each datacenter the agent knows, one after the other,
// each line it prints headed by the datacenter's name, and the error of a datacenter where it
// failed said in its place: the others are still acted on, and the command fails naming each
// that failed. With asJSON the output is one document: a list of each datacenter's result or
// error.
func (g *connFlags) inDatacenters(ctx context.Context, e env, stdout io.Writer, asJSON bool, run func(stdout io.Writer) error) error {
	if !g.allDatacenters {
		return run(stdout)
	}
	if g.datacenter != "" {
		return fmt.Errorf("%w: --datacenter %s and --all-datacenters: give one", errUsage, g.datacenter)
	}
	dcs, err := g.datacenters(ctx, e)
	if err != nil {
		return err
	}
	var failed []string
	outcomes := []dcOutcome{}
	for _, dc := range dcs {
		g.datacenter = dc
		var out bytes.Buffer
		err := run(&out)
		if errors.Is(err, errUsage) {
			// The command line is wrong, and so in every datacenter: nothing is done in any
			// (a usage error comes before anything is written).
			return err
		}
		outcome := dcOutcome{Datacenter: dc, Result: out.Bytes()}
		if err != nil {
			failed = append(failed, dc)
			outcome = dcOutcome{Datacenter: dc, Error: oneLine(err)}
		}
		if asJSON {
			outcomes = append(outcomes, outcome)
			continue
		}
		for _, line := range strings.SplitAfter(out.String(), "\n") {
			switch line {
			case "":
			case "\n":
				fmt.Fprintf(stdout, "%s:\n", dc)
			default:
				fmt.Fprintf(stdout, "%s: %s", dc, line)
			}
		}
		if err != nil {
			fmt.Fprintf(stdout, "%s: failed: %s\n", dc, oneLine(err))
		}
	}
	g.datacenter = ""
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(outcomes); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed in %d of %d datacenters: %s (the others were done)", len(failed), len(dcs), strings.Join(failed, ", "))
	}
	return nil
}

// datacenters are the datacenters the agent knows (its own among them), as
// /v1/catalog/datacenters lists them.
func (g *connFlags) datacenters(ctx context.Context, e env) ([]string, error) {
	client, err := g.consul(e)
	if err != nil {
		return nil, err
	}
	var dcs []string
	q := &api.QueryOptions{}
	if _, err := client.Raw().Query("/v1/catalog/datacenters", &dcs, q.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("list the datacenters: %w", err)
	}
	if len(dcs) == 0 {
		return nil, errors.New("list the datacenters: consul lists none")
	}
	return dcs, nil
}

// home reports whether the command acts on the local agent's own datacenter: no --datacenter,
// or the agent's; false when the agent cannot say.
func (g *connFlags) home(ctx context.Context, client *api.Client) bool {
	if g.datacenter == "" {
		return true
	}
	var self struct{ Config struct{ Datacenter string } }
	q := &api.QueryOptions{}
	if _, err := client.Raw().Query("/v1/agent/self", &self, q.WithContext(ctx)); err != nil {
		return false
	}
	return self.Config.Datacenter == g.datacenter
}
