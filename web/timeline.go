package web

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
)

// The timeline's bounds: the span it shows at most and at least, and its rows at most (the
// nodes most lately seen).
const (
	maxSpan = 24 * time.Hour
	minSpan = 10 * time.Minute
	maxRows = 200
)

// The timeline's geometry, in pixels: the labels' column, the bars' width, a row's height, the
// axis above the rows. The page's script lays the rows out with the same figures.
const (
	tlLeft  = 160
	tlWidth = 800
	tlRowH  = 18
	tlTop   = 24
)

// bar is one span of a node's row: a reboot of the history (by its outcome) or a phase of a
// place held now; open: it lasts until now.
type bar struct {
	start, end time.Time
	open       bool
	class      string
	title      string
}

// tlRow is a node's row of the timeline; last is when it was last seen (open: now).
type tlRow struct {
	node string
	bars []bar
	last time.Time
	open bool
}

// timelineFrame is the timeline at one moment: the rows it shows, the first of the time axis
// and its last (at), and how many rows it leaves out.
type timelineFrame struct {
	rows      []tlRow
	first, at time.Time
	left      int
}

// timeline is the roll at at: one row per node, the reboots of its group's history within the
// last day, and the phases of the place it holds now; the rows seen most lately first.
func timeline(snap fleet.Snapshot, at time.Time) timelineFrame {
	byNode := map[string][]bar{}
	for group, g := range snap.Groups {
		for _, e := range g.History.Entries {
			if at.Sub(e.End) > maxSpan {
				continue
			}
			byNode[e.Node] = append(byNode[e.Node], bar{start: e.Start, end: e.End, class: outcomeClass(e), title: fmt.Sprintf("%s (%s): %s", e.Node, group, e.Outcome)})
		}
		for _, h := range g.Lock.Holders {
			byNode[h.Node] = append(byNode[h.Node], holderBars(h, at)...)
		}
	}
	var all []tlRow
	for node, bars := range byNode {
		// Bars of several groups' records come in the maps' order: a row is the same at every read.
		sort.SliceStable(bars, func(i, j int) bool { return bars[i].start.Before(bars[j].start) })
		r := tlRow{node: node, bars: bars}
		for _, b := range bars {
			r.open = r.open || b.open
			if b.end.After(r.last) {
				r.last = b.end
			}
		}
		if r.open {
			r.last = at
		}
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].last.Equal(all[j].last) {
			return all[i].last.After(all[j].last)
		}
		return all[i].node < all[j].node
	})
	f := timelineFrame{at: at, first: at.Add(-minSpan)}
	if len(all) > maxRows {
		all, f.left = all[:maxRows], len(all)-maxRows
	}
	f.rows = all
	for _, r := range all {
		for _, b := range r.bars {
			if b.start.Before(f.first) {
				f.first = b.start
			}
		}
	}
	if at.Sub(f.first) > maxSpan {
		f.first = at.Add(-maxSpan)
	}
	return f
}

// more says what the timeline leaves out, or that it has nothing to show (HTML).
func (f timelineFrame) more() string {
	switch {
	case f.left > 0:
		return fmt.Sprintf("and %d more nodes", f.left)
	case len(f.rows) == 0:
		return "no reboot within the last day"
	}
	return ""
}

// tlLayout is where a row goes: its place from the top, and the time axis.
type tlLayout struct {
	y         int
	first, at time.Time
}

// layout is where the i-th row of f goes.
func (f timelineFrame) layout(i int) tlLayout {
	return tlLayout{y: tlTop + i*tlRowH, first: f.first, at: f.at}
}

// x is where t falls on the axis.
func (l tlLayout) x(t time.Time) float64 {
	if t.Before(l.first) {
		t = l.first
	}
	return tlLeft + float64(tlWidth)*float64(t.Sub(l.first))/float64(l.at.Sub(l.first))
}

// svg is r drawn (nil: without its place and its bars' geometry, which only follow the time:
// the key that says whether the row changed). The times of its bars (data-start, data-end,
// empty while it lasts) let the page's script lay it out again as time passes.
func (r tlRow) svg(lay *tlLayout) string {
	var b strings.Builder
	name := html.EscapeString(r.node)
	fmt.Fprintf(&b, `<g class="row" id="tl-%s" data-node="%s"`, name, name)
	if r.open {
		b.WriteString(` data-open="1"`)
	} else {
		fmt.Fprintf(&b, ` data-last="%s"`, ms(r.last))
	}
	if lay != nil {
		fmt.Fprintf(&b, ` transform="translate(0,%d)"`, lay.y)
	}
	fmt.Fprintf(&b, `><text x="4" y="13" class="label">%s</text>`, name)
	for _, br := range r.bars {
		end := ms(br.end)
		if br.open {
			end = ""
		}
		fmt.Fprintf(&b, `<rect data-start="%s" data-end="%s" y="2" height="%d" class="%s"`, ms(br.start), end, tlRowH-4, html.EscapeString(br.class))
		if lay != nil {
			fmt.Fprintf(&b, ` x="%.1f" width="%.1f"`, lay.x(br.start), max(lay.x(br.end)-lay.x(br.start), 2))
		}
		fmt.Fprintf(&b, `><title>%s</title></rect>`, html.EscapeString(br.title))
	}
	b.WriteString("</g>")
	return b.String()
}

// Timeline is the roll drawn as an SVG (see timeline), as the page shows it.
func (r *Rendering) Timeline() string {
	return r.timeline.svg(r.Rows[sectionTimeline], r.Parts[partMore])
}

// svg is the timeline's SVG with rows, the rows of f as rendered, and more, what it leaves out
// (HTML).
func (f timelineFrame) svg(rows []Row, more string) string {
	height := tlTop + tlRowH*len(rows) + 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" id="timeline-svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="the roll over time">`,
		tlLeft+tlWidth+10, height, tlLeft+tlWidth+10, height)
	fmt.Fprintf(&b, `<text id="timeline-from" x="%d" y="14" class="axis">%s</text><text id="timeline-to" x="%d" y="14" class="axis" text-anchor="end">%s</text>`,
		tlLeft, f.first.UTC().Format("15:04Z"), tlLeft+tlWidth, f.at.UTC().Format("15:04:05Z"))
	b.WriteString(`<g id="timeline-rows">`)
	for _, r := range rows {
		b.WriteString(r.HTML)
	}
	fmt.Fprintf(&b, `</g><text id="timeline-more" x="4" y="%d" class="label">%s</text></svg>`, tlTop+tlRowH*len(rows)+14, more)
	return b.String()
}

// holderBars are the phases of h's place up to at: rebooting from the reboot's start, and the
// phase it is in since it entered it, which lasts.
func holderBars(h lock.Holder, at time.Time) []bar {
	title := fmt.Sprintf("%s: %s since %s", h.Node, h.Phase, h.Since.UTC().Format(time.RFC3339))
	if h.Phase == lock.Finishing && !h.RebootStarted.IsZero() && h.RebootStarted.Before(h.Since) {
		return []bar{
			{start: h.RebootStarted, end: h.Since, class: "phase-rebooting", title: h.Node + ": rebooting"},
			{start: h.Since, end: at, open: true, class: "phase-finishing", title: title},
		}
	}
	return []bar{{start: h.Since, end: at, open: true, class: "phase-" + string(h.Phase), title: title}}
}

// outcomeClass is the class of a reboot of the history by its outcome.
func outcomeClass(e history.Entry) string {
	switch {
	case e.Outcome == history.Finished:
		return "done"
	case e.Failed():
		return "failed"
	}
	return "other"
}
