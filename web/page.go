package web

import "html/template"

// pageTemplate is the page: the last frame as it was when the page was asked for, the filters,
// and the script that takes each new frame from /events and keeps the filters applied.
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"trusted": func(s string) template.HTML { return template.HTML(s) }, //nolint:gosec // rendered by fleetTemplate and Timeline, which escape
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rebootmgr: the fleet</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.2em; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
tr.operator td { background: #fde8e8; } .stop, .err { color: #b00; font-weight: bold; }
.holder { display: inline-block; padding: 0 6px; margin: 1px; border-radius: 3px; background: #eee; }
.phase-preparing { fill: #e6b800; background: #fff3bf; } .phase-rebooting { fill: #e8590c; background: #ffd8a8; } .phase-finishing { fill: #1c7ed6; background: #d0ebff; }
.done { fill: #37b24d; } .failed { fill: #e03131; } .other { fill: #adb5bd; }
.label, .axis { font: 11px system-ui, sans-serif; fill: #444; }
ul.evidence { margin: 0; padding-left: 1.2em; font-size: 0.92em; }
#state { color: #666; } #state.stale { color: #b00; font-weight: bold; }
#filters select, #filters input { margin-right: 1em; }
</style></head>
<body>
<h1>rebootmgr: the fleet</h1>
<p id="state" data-seq="{{.Seq}}">{{if .Error}}{{.Error}}{{else}}as of {{.At}}{{end}}</p>
<p id="filters">
 group <select id="f-group"><option value="">all</option></select>
 phase <select id="f-phase"><option value="">all</option></select>
 held back by <select id="f-gate"><option value="">all</option></select>
 node <input id="f-node" type="search" placeholder="name contains">
 group by <select id="f-by"><option value="">name</option><option value="group">group</option><option value="phase">phase</option><option value="gate">gate</option></select>
 <span id="shown"></span>
</p>
<div id="fleet">{{trusted .Fleet}}</div>
<section><h2>Timeline</h2><div id="timeline">{{trusted .Timeline}}</div></section>
<script>
(function () {
  var f = { group: "", phase: "", gate: "", node: "", by: "" };
  function options(id, attr) {
    var sel = document.getElementById(id), keep = sel.value, seen = {};
    document.querySelectorAll("#nodes tbody tr").forEach(function (r) { seen[r.dataset[attr]] = true; });
    while (sel.options.length > 1) sel.remove(1);
    Object.keys(seen).sort().forEach(function (v) { if (v !== "") sel.add(new Option(v, v)); });
    sel.value = seen[keep] ? keep : "";
  }
  function apply() {
    ["group", "phase", "gate", "node", "by"].forEach(function (k) { f[k] = document.getElementById("f-" + k).value; });
    var body = document.querySelector("#nodes tbody");
    if (!body) return;
    var rows = Array.prototype.slice.call(body.rows), shown = 0;
    if (f.by) rows.sort(function (a, b) { return (a.dataset[f.by] + "\u0000" + a.dataset.node).localeCompare(b.dataset[f.by] + "\u0000" + b.dataset.node); });
    else rows.sort(function (a, b) { return a.dataset.node.localeCompare(b.dataset.node); });
    rows.forEach(function (r) {
      var ok = (!f.group || r.dataset.group === f.group) && (!f.phase || r.dataset.phase === f.phase) &&
        (!f.gate || r.dataset.gate === f.gate) && (!f.node || r.dataset.node.indexOf(f.node) >= 0);
      r.hidden = !ok; if (ok) shown++;
      body.appendChild(r);
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " nodes";
  }
  function refresh() { options("f-group", "group"); options("f-phase", "phase"); options("f-gate", "gate"); apply(); }
  ["f-group", "f-phase", "f-gate", "f-node", "f-by"].forEach(function (id) { document.getElementById(id).addEventListener("input", apply); });
  refresh();
  var state = document.getElementById("state");
  var es = new EventSource("events");
  es.addEventListener("fleet", function (ev) {
    var d = JSON.parse(ev.data);
    if (d.fleet) document.getElementById("fleet").innerHTML = d.fleet;
    if (d.timeline) document.getElementById("timeline").innerHTML = d.timeline;
    state.textContent = d.error ? "cannot read the fleet (the view is of " + d.at + " or before): " + d.error : "as of " + d.at;
    state.className = d.error ? "stale" : "";
    state.dataset.seq = d.seq;
    refresh();
  });
  es.onerror = function () { state.textContent = "disconnected from rebootmgr web: reconnecting"; state.className = "stale"; };
})();
</script>
</body></html>
`))
