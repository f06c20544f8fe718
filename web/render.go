package web

import (
	"html/template"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/history"
)

// maxFailures bounds the failures listed.
const maxFailures = 20

// The sections of the page whose rows are sent one by one: the groups' table, the nodes' table
// and the timeline's rows. A row's element id is its section's prefix and its name.
const (
	sectionGroup    = "group"
	sectionNode     = "node"
	sectionTimeline = "tl"
)

// The parts of the page that are not rows, by their element's id.
const (
	partStop     = "stop"
	partFailures = "failures"
	partMore     = "timeline-more"
)

// Rendering is the fleet as the page shows it, in parts: a change is sent as the parts and rows
// it changed (see Diff).
type Rendering struct {
	At string
	// Parts are the parts that are not rows (HTML), by their element's id: the fleet's stop
	// flag, the last failures, what the timeline leaves out.
	Parts map[string]string
	// Rows are each section's rows, in the order the server shows them.
	Rows map[string][]Row
	// timeline is the timeline's frame: its time axis and its rows (see Timeline).
	timeline timelineFrame
	// nodes are the nodes' rows as status computed them, by name, with their HTML: a row the
	// next rendering computes the same is not rendered again.
	nodes map[string]nodeRow
}

// nodeRow is a node's row as status computed it, and its HTML.
type nodeRow struct {
	node fleet.Node
	html string
}

// Row is one row of a section: its name (its element's id without the section's prefix), its
// HTML, and the key that says whether it changed (its HTML, but for a timeline row, whose
// geometry follows the time: see tlRow).
type Row struct {
	ID   string
	HTML string
	Key  string
}

// failure is a reboot that failed, in its group.
type failure struct {
	Group string
	history.Entry
}

// Render is the rendering of snap; prev, the rendering before it (nil: none), lends it the rows
// of the nodes that did not change.
func Render(snap fleet.Snapshot, prev *Rendering) (*Rendering, error) {
	st := fleet.Compute(snap)
	r := &Rendering{At: st.At.Format(time.RFC3339), Parts: map[string]string{}, Rows: map[string][]Row{}, nodes: map[string]nodeRow{}}
	holders := map[string][]fleet.Holder{}
	for _, h := range st.Holders {
		holders[h.Group] = append(holders[h.Group], h)
	}
	var err error
	if r.Parts[partStop], err = execute("stop", st.Stop); err != nil {
		return nil, err
	}
	if r.Parts[partFailures], err = execute("failures", failures(snap)); err != nil {
		return nil, err
	}
	for _, g := range st.Groups {
		if err := r.add(sectionGroup, g.Name, "group", groupRow{Group: g, Holders: holders[g.Name]}); err != nil {
			return nil, err
		}
	}
	for _, n := range st.Nodes {
		// The template reads the node alone: the same node is the same HTML.
		if was, ok := prev.node(n.Node); ok && reflect.DeepEqual(was.node, n) {
			r.Rows[sectionNode] = append(r.Rows[sectionNode], Row{ID: n.Node, HTML: was.html, Key: was.html})
			r.nodes[n.Node] = was
			continue
		}
		if err := r.add(sectionNode, n.Node, "node", n); err != nil {
			return nil, err
		}
		rows := r.Rows[sectionNode]
		r.nodes[n.Node] = nodeRow{node: n, html: rows[len(rows)-1].HTML}
	}
	r.timeline = timeline(snap, st.At)
	r.Parts[partMore] = r.timeline.more()
	for i, row := range r.timeline.rows {
		lay := r.timeline.layout(i)
		r.Rows[sectionTimeline] = append(r.Rows[sectionTimeline], Row{ID: row.node, HTML: row.svg(&lay), Key: row.svg(nil)})
	}
	return r, nil
}

// node is the row of the node called name in r (none when r is nil).
func (r *Rendering) node(name string) (nodeRow, bool) {
	if r == nil {
		return nodeRow{}, false
	}
	n, ok := r.nodes[name]
	return n, ok
}

// add renders data with the template name as the row id of section.
func (r *Rendering) add(section, id, name string, data any) error {
	html, err := execute(name, data)
	if err != nil {
		return err
	}
	r.Rows[section] = append(r.Rows[section], Row{ID: id, HTML: html, Key: html})
	return nil
}

// execute is the template name run on data.
func execute(name string, data any) (string, error) {
	var b strings.Builder
	if err := rows.ExecuteTemplate(&b, name, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// failures are the last failed reboots of snap's histories, the latest first.
func failures(snap fleet.Snapshot) []failure {
	var out []failure
	for name, g := range snap.Groups {
		for _, e := range g.History.Entries {
			if e.Failed() {
				out = append(out, failure{Group: name, Entry: e})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.End.Equal(b.End) {
			return a.End.After(b.End)
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Node < b.Node
	})
	if len(out) > maxFailures {
		out = out[:maxFailures]
	}
	return out
}

// groupRow is a group's row: the group and its holders.
type groupRow struct {
	fleet.Group
	Holders []fleet.Holder
}

// Fleet is the groups, the nodes and the failures, as the page shows them (HTML).
func (r *Rendering) Fleet() string {
	join := func(section string) template.HTML {
		var b strings.Builder
		for _, row := range r.Rows[section] {
			b.WriteString(row.HTML)
		}
		return template.HTML(b.String()) //nolint:gosec // rows rendered by the templates of rows, which escape
	}
	html, err := execute("fleet", map[string]template.HTML{
		"Stop": template.HTML(r.Parts[partStop]), "Failures": template.HTML(r.Parts[partFailures]), //nolint:gosec // as rows
		"Groups": join(sectionGroup), "Nodes": join(sectionNode),
	})
	if err != nil {
		return ""
	}
	return html
}

// ms is t in milliseconds since the epoch, as the page's script reads times.
func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

var funcs = template.FuncMap{
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	// minute is an estimate's time: to the minute, so that a row does not change at every read.
	"minute": func(t time.Time) string { return t.UTC().Round(time.Minute).Format("2006-01-02 15:04Z") },
	"clock":  func(t time.Time) string { return t.UTC().Format("15:04:05Z") },
	"ms":     ms,
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

// rows are the templates of the page's parts and rows. A holder's time in its phase is written
// by the page's script from data-since (the server writes when it began): a row changes when
// what it shows changes, not as time passes.
var rows = template.Must(template.New("rows").Funcs(funcs).Parse(`
{{define "stop"}}{{if .}}<p class="stop">The fleet is stopped: {{.Value}}</p>{{end}}{{end}}
{{define "group"}}<tr id="group-{{.Name}}" data-group="{{.Name}}"><td>{{.Name}}</td><td>{{.LimitSpec}}{{if .Error}} <span class="err">{{.Error}}</span>{{end}}</td>
<td>{{.Group.Holders}}{{range .Holders}} <span class="holder phase-{{.Phase}}">{{.Node}} {{.Phase}} <span class="ago" data-since="{{ms .Since}}">since {{clock .Since}}</span></span>{{end}}{{range $k, $n := .Python}} <span class="holder">{{$n}} (Python rebootmgr)</span>{{end}}</td>
<td>{{if .Stop}}<span class="stop">{{.Stop.Value}}</span>{{else}}-{{end}}</td></tr>
{{end}}
{{define "node"}}<tr id="node-{{.Node}}" data-node="{{.Node}}" data-group="{{.Group}}" data-phase="{{phaseOf .}}" data-gate="{{gateOf .}}"{{if .Operator}} class="operator"{{end}}>
<td>{{.Node}}{{if not .InCatalog}} <small>(not in the catalog)</small>{{end}}</td><td>{{.Group}}</td><td class="phase">{{phaseOf .}}</td>
<td class="daemon">{{if .Daemon}}{{.Daemon.State}}<br><small>{{.Daemon.Status}}</small>{{else}}none{{end}}</td>
<td class="gate">{{if .Operator}}<b>waits for an operator:</b> {{.Operator.Reason}}<br><code>{{.Operator.Command}}</code>{{else if .Blocked}}<b>{{.Blocked.Gate}}</b>{{with .Blocked.Evidence}}<ul class="evidence">{{range .}}<li>{{.}}</li>{{end}}</ul>{{else}}: {{.Blocked.Reason}}{{end}}{{else}}-{{end}}</td>
<td class="queue">{{with .Queue}}#{{.Place}} ({{.Ahead}} ahead){{if .Blocked}}, blocked by {{.Blocked}}{{end}}{{with .Estimate}}<br>starts about {{minute .}}{{end}}{{else}}-{{end}}</td></tr>
{{end}}
{{define "failures"}}{{if .}}<ul>{{range .}}<li>{{stamp .End}} <b>{{.Node}}</b> ({{.Group}}): {{.Outcome}}{{if .Detail}}: {{.Detail}}{{end}}</li>{{end}}</ul>{{else}}<p>none in the histories</p>{{end}}{{end}}
{{define "fleet"}}
<section><h2>Groups</h2>
<div id="stop">{{.Stop}}</div>
<table id="groups"><thead><tr><th>group</th><th>limit</th><th>holders</th><th>stop flag</th></tr></thead><tbody>
{{.Groups}}</tbody></table></section>
<section><h2>Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>group</th><th>phase</th><th>daemon</th><th>held back by</th><th>queue</th></tr></thead><tbody>
{{.Nodes}}</tbody></table></section>
<section><h2>Last failures</h2><div id="failures">{{.Failures}}</div></section>{{end}}`))
