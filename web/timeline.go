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

// bar is one span of a node's row: a reboot of the history (by its outcome) or a phase of a
// place held now.
type bar struct {
	start, end time.Time
	class      string
	title      string
}

// Timeline is the roll drawn as an SVG: one row per node, the reboots of its group's history
// within the last day, and the phases of the place it holds now, up to at.
func Timeline(snap fleet.Snapshot, at time.Time) string {
	rows := map[string][]bar{}
	for group, g := range snap.Groups {
		for _, e := range g.History.Entries {
			if at.Sub(e.End) > maxSpan {
				continue
			}
			rows[e.Node] = append(rows[e.Node], bar{e.Start, e.End, outcomeClass(e), fmt.Sprintf("%s (%s): %s", e.Node, group, e.Outcome)})
		}
		for _, h := range g.Lock.Holders {
			rows[h.Node] = append(rows[h.Node], holderBars(h, at)...)
		}
	}
	type row struct {
		node string
		bars []bar
		last time.Time
	}
	var all []row
	first := at.Add(-minSpan)
	for node, bars := range rows {
		r := row{node: node, bars: bars}
		for _, b := range bars {
			if b.end.After(r.last) {
				r.last = b.end
			}
			if b.start.Before(first) {
				first = b.start
			}
		}
		all = append(all, r)
	}
	if at.Sub(first) > maxSpan {
		first = at.Add(-maxSpan)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].last.Equal(all[j].last) {
			return all[i].last.After(all[j].last)
		}
		return all[i].node < all[j].node
	})
	more := 0
	if len(all) > maxRows {
		all, more = all[:maxRows], len(all)-maxRows
	}
	const left, width, rowH, top = 160, 800, 18, 24
	height := top + rowH*len(all) + 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" id="timeline-svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="the roll over time">`, left+width+10, height, left+width+10, height)
	x := func(t time.Time) float64 {
		if t.Before(first) {
			t = first
		}
		return left + float64(width)*float64(t.Sub(first))/float64(at.Sub(first))
	}
	fmt.Fprintf(&b, `<text x="%d" y="14" class="axis">%s</text><text x="%d" y="14" class="axis" text-anchor="end">%s</text>`,
		left, first.UTC().Format("15:04Z"), left+width, at.UTC().Format("15:04:05Z"))
	for i, r := range all {
		y := top + i*rowH
		fmt.Fprintf(&b, `<g class="row" data-node="%s"><text x="4" y="%d" class="label">%s</text>`, html.EscapeString(r.node), y+13, html.EscapeString(r.node))
		for _, br := range r.bars {
			w := max(x(br.end)-x(br.start), 2)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" class="%s"><title>%s</title></rect>`, x(br.start), y+2, w, rowH-4, br.class, html.EscapeString(br.title))
		}
		b.WriteString("</g>")
	}
	if more > 0 {
		fmt.Fprintf(&b, `<text x="4" y="%d" class="label">and %d more nodes</text>`, top+rowH*len(all)+14, more)
	}
	if len(all) == 0 {
		fmt.Fprintf(&b, `<text x="4" y="%d" class="label">no reboot within the last day</text>`, top+14)
	}
	b.WriteString("</svg>")
	return b.String()
}

// holderBars are the phases of h's place up to at: rebooting from the reboot's start, and the
// phase it is in since it entered it.
func holderBars(h lock.Holder, at time.Time) []bar {
	title := fmt.Sprintf("%s: %s since %s", h.Node, h.Phase, h.Since.UTC().Format(time.RFC3339))
	if h.Phase == lock.Finishing && !h.RebootStarted.IsZero() && h.RebootStarted.Before(h.Since) {
		return []bar{
			{h.RebootStarted, h.Since, "phase-rebooting", h.Node + ": rebooting"},
			{h.Since, at, "phase-finishing", title},
		}
	}
	return []bar{{h.Since, at, "phase-" + string(h.Phase), title}}
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
