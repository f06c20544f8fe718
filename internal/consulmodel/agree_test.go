package consulmodel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rebootmgr/rebootmgr/internal/consulmodel"
	"github.com/rebootmgr/rebootmgr/internal/consultest"
)

// backend is a Consul to run a scenario on: a real dev agent (and a client agent beside it),
// or the model.
type backend struct {
	client                func(node string) *api.Client
	fail, restart, leave  func(node string)
	model                 bool
	want                  []string // the model's observations, which a real agent is waited for
	got                   []string
	t                     *testing.T
	index                 map[string]uint64
	firstIndex, lastIndex uint64
}

// see records an observation made at once.
func (b *backend) see(name, v string) { b.got = append(b.got, name+": "+v) }

// await records an observation that a real agent reaches in its own time (a failure detected,
// a leave reconciled): on a real agent it is read with blocking queries until it is what the
// model said, or a minute passed.
func (b *backend) await(name string, read func(q *api.QueryOptions) (string, uint64, error)) {
	want := ""
	if !b.model && len(b.got) < len(b.want) {
		want = strings.TrimPrefix(b.want[len(b.got)], name+": ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var index uint64
	for {
		v, idx, err := read((&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx))
		if err != nil {
			v = "error " + err.Error()
		}
		if b.model || v == want || ctx.Err() != nil {
			b.see(name, v)
			return
		}
		index = idx
	}
}

// rel names how an index compares with one recorded before.
func (b *backend) rel(name string, idx uint64, than string) {
	was, ok := b.index[than]
	b.index[name] = idx
	switch {
	case !ok:
		b.see(name, "?")
	case idx > was:
		b.see(name, "> "+than)
	case idx == was:
		b.see(name, "= "+than)
	default:
		b.see(name, "< "+than)
	}
}

func status(err error) string {
	var se api.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("status %d %s", se.Code, se.Body)
	}
	if err != nil {
		return "error " + err.Error()
	}
	return "ok"
}

func pairString(p *api.KVPair) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprintf("%s=%q session=%v lock=%d", p.Key, p.Value, p.Session != "", p.LockIndex)
}

// TestModelAgreesWithConsul runs the same requests on a real Consul agent and on the model and
// compares what they answer: statuses, values, and how indexes relate (never their numbers).
func TestModelAgreesWithConsul(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(b *backend)
	}{
		{"kv check-and-set", scenarioCAS},
		{"kv lists and sizes", scenarioLists},
		{"transactions", scenarioTxn},
		{"blocking queries", scenarioBlocking},
		{"maintenance", scenarioMaintenance},
		{"sessions", scenarioSessions},
		{"fail and leave", scenarioFailLeave},
		{"members", scenarioMembers},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			m := consulmodel.New()
			m.Register("n1", nil)
			joined := map[string]bool{"n1": true}
			mb := &backend{t: t, model: true, index: map[string]uint64{},
				client: func(node string) *api.Client {
					if !joined[node] {
						joined[node] = true
						m.Register(node, nil)
					}
					return m.Client(node, nil)
				},
				fail: m.Fail, restart: func(n string) { m.Register(n, nil) }, leave: m.Leave}
			sc.run(mb)

			dev := consultest.Dev(t, "n1")
			agents := map[string]*consultest.Agent{"n1": dev}
			agent := func(node string) *consultest.Agent {
				if agents[node] == nil {
					agents[node] = consultest.Client(t, node, dev)
				}
				return agents[node]
			}
			rb := &backend{t: t, want: mb.got, index: map[string]uint64{},
				client:  func(node string) *api.Client { return agent(node).Client },
				fail:    func(node string) { agent(node).Kill() },
				restart: func(node string) { agent(node).Start() },
				leave:   func(node string) { agent(node).Leave() }}
			sc.run(rb)
			if strings.Join(mb.got, "\n") != strings.Join(rb.got, "\n") {
				t.Errorf("the model and Consul differ:\n%s", diff(mb.got, rb.got))
			}
		})
	}
}

func diff(model, real []string) string {
	var b strings.Builder
	for i := 0; i < max(len(model), len(real)); i++ {
		var m, r string
		if i < len(model) {
			m = model[i]
		}
		if i < len(real) {
			r = real[i]
		}
		mark := "  "
		if m != r {
			mark = "! "
		}
		fmt.Fprintf(&b, "%smodel: %s\n%sconsul: %s\n", mark, m, mark, r)
	}
	return b.String()
}
