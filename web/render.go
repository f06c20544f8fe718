package web

import (
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/history"
)

// maxFailures bounds the failures listed.
const maxFailures = 20

// view is what the fleet's part of the page shows.
type view struct {
	Status   fleet.Status
	Holders  map[string][]fleet.Holder
	Failures []failure
}

// failure is a reboot that failed, in its group.
type failure struct {
	Group string
	history.Entry
}

// Render is the frame of snap.
func Render(snap fleet.Snapshot) *Frame {
	st := fleet.Compute(snap)
	v := view{Status: st, Holders: map[string][]fleet.Holder{}}
	for _, h := range st.Holders {
		v.Holders[h.Group] = append(v.Holders[h.Group], h)
	}
	for name, g := range snap.Groups {
		for _, e := range g.History.Entries {
			if e.Failed() {
				v.Failures = append(v.Failures, failure{Group: name, Entry: e})
			}
		}
	}
	sort.Slice(v.Failures, func(i, j int) bool { return v.Failures[i].End.After(v.Failures[j].End) })
	if len(v.Failures) > maxFailures {
		v.Failures = v.Failures[:maxFailures]
	}
	var b strings.Builder
	if err := fleetTemplate.Execute(&b, v); err != nil {
		return &Frame{At: st.At.Format(time.RFC3339), Error: "rendering the fleet: " + err.Error()}
	}
	return &Frame{At: st.At.Format(time.RFC3339), Fleet: b.String(), Timeline: Timeline(snap, st.At)}
}

var funcs = template.FuncMap{
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"ago": func(at, t time.Time) string {
		return at.Sub(t).Truncate(time.Second).String()
	},
	"gateOf": func(n fleet.Node) string {
		if n.Blocked == nil {
			return ""
		}
		return n.Blocked.Gate
	},
	"phaseOf": func(n fleet.Node) string {
		if n.Phase == "" {
			return "-"
		}
		return string(n.Phase)
	},
}

var fleetTemplate = template.Must(template.New("fleet").Funcs(funcs).Parse(`
<section><h2>Groups</h2>
{{if .Status.Stop}}<p class="stop">The fleet is stopped: {{.Status.Stop.Value}}</p>{{end}}
<table id="groups"><thead><tr><th>group</th><th>limit</th><th>holders</th><th>stop flag</th></tr></thead><tbody>
{{range .Status.Groups}}<tr id="group-{{.Name}}" data-group="{{.Name}}"><td>{{.Name}}</td><td>{{.LimitSpec}}{{if .Error}} <span class="err">{{.Error}}</span>{{end}}</td>
<td>{{.Holders}}{{range index $.Holders .Name}} <span class="holder phase-{{.Phase}}">{{.Node}} {{.Phase}} {{ago $.Status.At .Since}}</span>{{end}}{{range $k, $n := .Python}} <span class="holder">{{$n}} (Python rebootmgr)</span>{{end}}</td>
<td>{{if .Stop}}<span class="stop">{{.Stop.Value}}</span>{{else}}-{{end}}</td></tr>
{{end}}</tbody></table></section>
<section><h2>Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>group</th><th>phase</th><th>daemon</th><th>held back by</th><th>queue</th></tr></thead><tbody>
{{range .Status.Nodes}}<tr id="node-{{.Node}}" data-node="{{.Node}}" data-group="{{.Group}}" data-phase="{{phaseOf .}}" data-gate="{{gateOf .}}"{{if .Operator}} class="operator"{{end}}>
<td>{{.Node}}{{if not .InCatalog}} <small>(not in the catalog)</small>{{end}}</td><td>{{.Group}}</td><td class="phase">{{phaseOf .}}</td>
<td class="daemon">{{if .Daemon}}{{.Daemon.State}}<br><small>{{.Daemon.Status}}</small>{{else}}none{{end}}</td>
<td class="gate">{{if .Operator}}<b>waits for an operator:</b> {{.Operator.Reason}}<br><code>{{.Operator.Command}}</code>{{else if .Blocked}}<b>{{.Blocked.Gate}}</b>{{with .Blocked.Evidence}}<ul class="evidence">{{range .}}<li>{{.}}</li>{{end}}</ul>{{else}}: {{.Blocked.Reason}}{{end}}{{else}}-{{end}}</td>
<td class="queue">{{with .Queue}}#{{.Place}} ({{.Ahead}} ahead){{if .Blocked}}, blocked by {{.Blocked}}{{end}}{{with .Estimate}}<br>starts about {{stamp .}}{{end}}{{else}}-{{end}}</td></tr>
{{end}}</tbody></table></section>
<section><h2>Last failures</h2>
{{if .Failures}}<ul id="failures">{{range .Failures}}<li>{{stamp .End}} <b>{{.Node}}</b> ({{.Group}}): {{.Outcome}}{{if .Detail}}: {{.Detail}}{{end}}</li>{{end}}</ul>{{else}}<p>none in the histories</p>{{end}}
</section>`))
