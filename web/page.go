package web

import "html/template"

// pageTemplate is the page: the state as it was when the page was asked for, the filters, and
// the script that applies each update from /events (the rows and parts that changed, or the
// whole state), keeps the filters applied, and lays the timeline out as time passes.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
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
<p id="state" data-epoch="{{.Epoch}}" data-seq="{{.Seq}}" data-at="{{.At}}">{{if .Error}}{{.Error}}{{else}}as of {{.At}}{{end}}</p>
<p id="filters">
 group <select id="f-group"><option value="">all</option></select>
 phase <select id="f-phase"><option value="">all</option></select>
 held back by <select id="f-gate"><option value="">all</option></select>
 node <input id="f-node" type="search" placeholder="name contains">
 group by <select id="f-by"><option value="">name</option><option value="group">group</option><option value="phase">phase</option><option value="gate">gate</option></select>
 <span id="shown"></span>
</p>
<div id="fleet">{{.Fleet}}</div>
<section><h2>Timeline</h2><div id="timeline">{{.Timeline}}</div></section>
<script>
(function () {
  var f = { group: "", phase: "", gate: "", node: "", by: "" };
  var state = document.getElementById("state"), seq = +state.dataset.seq, skew = 0;
  // skew is the server's clock less the browser's: the timeline and the holders' times follow the server's.
  function clock(at) { var t = Date.parse(at); if (!isNaN(t)) skew = t - Date.now(); }
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
    var moved = rows.some(function (r, i) { return body.rows[i] !== r; });
    rows.forEach(function (r) {
      var ok = (!f.group || r.dataset.group === f.group) && (!f.phase || r.dataset.phase === f.phase) &&
        (!f.gate || r.dataset.gate === f.gate) && (!f.node || r.dataset.node.indexOf(f.node) >= 0);
      r.hidden = !ok; if (ok) shown++;
      if (moved) body.appendChild(r);
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " nodes";
  }
  function refresh() { options("f-group", "group"); options("f-phase", "phase"); options("f-gate", "gate"); apply(); }
  ["f-group", "f-phase", "f-gate", "f-node", "f-by"].forEach(function (id) { document.getElementById(id).addEventListener("input", apply); });

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function hm(t, secs) { var d = new Date(t); return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + (secs ? ":" + two(d.getUTCSeconds()) : "") + "Z"; }
  function dur(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    return (h ? h + "h" + m + "m" : m ? m + "m" : "") + s % 60 + "s";
  }
  function ages() {
    var now = Date.now() + skew;
    document.querySelectorAll(".ago[data-since]").forEach(function (el) { el.textContent = dur(now - el.dataset.since); });
  }
  // layout places the timeline's rows, the latest seen first, on the axis from the first bar
  // (a day at most, ten minutes at least) to now: the server sends a row only when its bars change.
  var L = {{.Left}}, W = {{.Width}}, H = {{.RowH}}, TOP = {{.Top}}, MIN = {{.MinSpan}}, MAX = {{.MaxSpan}};
  function layout() {
    var svg = document.getElementById("timeline-svg"), box = document.getElementById("timeline-rows");
    if (!svg || !box) return;
    var now = Date.now() + skew, first = now - MIN, rows = Array.prototype.slice.call(box.children);
    function last(r) { return r.dataset.open ? Infinity : +r.dataset.last; }
    rows.sort(function (a, b) { var la = last(a), lb = last(b); return la !== lb ? (la > lb ? -1 : 1) : (a.dataset.node < b.dataset.node ? -1 : 1); });
    rows.forEach(function (r) { r.querySelectorAll("rect").forEach(function (b) { first = Math.min(first, +b.dataset.start); }); });
    first = Math.max(first, now - MAX);
    function x(t) { return L + W * (Math.max(t, first) - first) / (now - first); }
    rows.forEach(function (r, i) {
      box.appendChild(r);
      r.setAttribute("transform", "translate(0," + (TOP + i * H) + ")");
      r.querySelectorAll("rect").forEach(function (b) {
        var s = +b.dataset.start, e = b.dataset.end ? +b.dataset.end : now;
        b.setAttribute("x", x(s).toFixed(1)); b.setAttribute("width", Math.max(x(e) - x(s), 2).toFixed(1));
      });
    });
    var h = TOP + H * rows.length + 24, more = document.getElementById("timeline-more");
    svg.setAttribute("height", h); svg.setAttribute("viewBox", "0 0 " + (L + W + 10) + " " + h);
    if (more) more.setAttribute("y", TOP + H * rows.length + 14);
    document.getElementById("timeline-from").textContent = hm(first, false);
    document.getElementById("timeline-to").textContent = hm(now, true);
  }

  // The sections whose rows come one by one: their rows' id prefix, and where they go.
  var sections = { group: ["group-", "#groups tbody"], node: ["node-", "#nodes tbody"], tl: ["tl-", "#timeline-rows"] };
  function parse(sec, html) {
    var t = document.createElement("template");
    if (sec === "tl") {
      t.innerHTML = '<svg xmlns="http://www.w3.org/2000/svg">' + html + "</svg>";
      return t.content.firstElementChild.firstElementChild;
    }
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }
  function sortBy(box, attr) {
    var rows = Array.prototype.slice.call(box.children);
    rows.sort(function (a, b) { return a.dataset[attr] < b.dataset[attr] ? -1 : 1; });
    rows.forEach(function (r) { box.appendChild(r); });
  }
  function update(u) {
    if (u.full) {
      document.getElementById("fleet").innerHTML = u.fleet || "";
      document.getElementById("timeline").innerHTML = u.timeline || "";
    }
    var gone = u.gone || {}, rows = u.rows || {}, parts = u.parts || {};
    Object.keys(gone).forEach(function (sec) {
      gone[sec].forEach(function (id) { var el = document.getElementById(sections[sec][0] + id); if (el) el.remove(); });
    });
    Object.keys(rows).forEach(function (sec) {
      var box = document.querySelector(sections[sec][1]);
      if (!box) return;
      Object.keys(rows[sec]).forEach(function (id) {
        var el = document.getElementById(sections[sec][0] + id), row = parse(sec, rows[sec][id]);
        if (el) el.replaceWith(row); else box.appendChild(row);
      });
    });
    Object.keys(parts).forEach(function (id) { var el = document.getElementById(id); if (el) el.innerHTML = parts[id]; });
    if (rows.group) sortBy(document.querySelector("#groups tbody"), "group");
    seq = u.seq;
    clock(u.at);
    state.textContent = u.error ? "cannot read the fleet (the view is of " + u.at + " or before): " + u.error : "as of " + u.at;
    state.className = u.error ? "stale" : "";
    state.dataset.seq = u.seq;
    refresh(); layout(); ages();
  }

  var es;
  function connect(after) {
    es = new EventSource("events" + (after ? "?after=" + encodeURIComponent(after) : ""));
    es.addEventListener("update", function (ev) {
      var u = JSON.parse(ev.data);
      if (!u.full && u.seq !== seq + 1) { es.close(); connect(""); return; } // a change missed: the whole state again
      update(u);
    });
    es.onerror = function () { state.textContent = "disconnected from rebootmgr web: reconnecting"; state.className = "stale"; };
  }
  clock(state.dataset.at);
  refresh(); layout(); ages();
  connect(state.dataset.epoch + "." + seq);
  setInterval(function () { layout(); ages(); }, 1000);
})();
</script>
</body></html>
`))
