"""The timeline of a history: one self-contained HTML page (no network; script and style inline).

What a reader sees: a lane per node (the coordinating node first) and a `clients` lane on top; task
spans (hatched once cancelled), with an arrow from a parent to each child on another lane; RPC
arrows between lanes (a dropped one dashed red, with a cross); shaded bands where a fault held a
node (or every node) and where a node was paused, killed or out of the cluster; a red marker where
a checker found a violation, which highlights the events that witness it; the details of any item
on hover and click. Wheel zooms around the pointer, drag pans, `fit` shows everything; only what is
in view is drawn, at most `MAX_DRAWN` items at a time (zoom in for the rest), and a summary
(events by type and node, checker results) heads the page.

This module turns a `History` and the checker results into the page's data (`timeline_data`, a
pure function) and writes the page; the drawing is the inline script.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from coordinator.history.checkers import Model, Result, model_of
from simnode.history import Event, History

MAX_DRAWN = 4000
CLIENT_LANE = "clients"


def _node_names(history: History) -> list[str]:
    names = history.node_names
    seen = set(names)
    for e in history.events:  # nodes the header did not list (should not happen; be kind)
        n = e.get("node")
        if isinstance(n, str) and n and n not in seen and e["type"] not in ("fault_start",):
            seen.add(n)
            names.append(n)
    return names


def _finite(t: float, end: float) -> float:
    return end if math.isinf(t) else t


def timeline_data(history: History, results: dict[str, Result]) -> dict[str, Any]:
    """Everything the page draws, as JSON-ready values."""
    end = history.end
    m: Model = model_of(history)
    lanes = [CLIENT_LANE, *_node_names(history)]
    spans: list[dict[str, Any]] = []
    index_of_span: dict[tuple[str, int], int] = {}
    for span in m.spans:
        index_of_span[span.key] = len(spans)
        spans.append(
            {
                "lane": span.node,
                "task": span.key[0],
                "action": span.action,
                "parent": span.parent,
                "cancellable": span.cancellable,
                "start": span.start,
                "end": _finite(span.end, end),
                "open": math.isinf(span.end),
                "cancelled": span.cancelled,
                "ev": span.registered,
                "end_ev": span.ended_by,
            }
        )
    # parent → child arrows across lanes (the parent span live when the child registered)
    arrows = []
    for i, s in enumerate(spans):
        parents = m.by_task.get(str(s["parent"]), []) if s["parent"] else []
        live = [p for p in parents if p.start <= s["start"]]
        if live:
            p = live[-1]
            j = index_of_span[p.key]
            if spans[j]["lane"] != s["lane"]:
                arrows.append({"from": j, "to": i, "t": s["start"]})
    ops: list[dict[str, Any]] = []
    open_ops: dict[Any, int] = {}
    rpcs: list[dict[str, Any]] = []
    open_rpcs: dict[tuple[str, Any], int] = {}
    bands: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for i, e in enumerate(history.events):
        kind = e["type"]
        t = float(e["t"])
        if kind == "invoke":
            open_ops[e["op"]] = len(ops)
            ops.append(
                {
                    "label": f"{e['method']} {e['path']}",
                    "start": t,
                    "end": end,
                    "kind": "open",
                    "ev": i,
                    "end_ev": None,
                }
            )
        elif kind in ("ok", "fail", "info") and e.get("op") in open_ops:
            op = ops[open_ops.pop(e["op"])]
            op["end"], op["kind"], op["end_ev"] = t, kind, i
            op["status"] = e.get("status")
        elif kind == "rpc_send":
            open_rpcs[(str(e["node"]), e["call"])] = len(rpcs)
            rpcs.append(
                {
                    "from": e["node"],
                    "to": e["to"],
                    "method": e["method"],
                    "start": t,
                    "end": None,
                    "dropped": False,
                    "ev": i,
                }
            )
        elif kind in ("rpc_deliver", "rpc_drop"):
            k = open_rpcs.pop((str(e["node"]), e["call"]), None)
            if k is not None:
                rpcs[k]["end"] = t
                rpcs[k]["dropped"] = kind == "rpc_drop"
                rpcs[k]["verdict"] = e.get("verdict")
                rpcs[k]["end_ev"] = i
        elif kind in ("kill", "pause", "resume", "restart", "heal", "node_left", "node_joined"):
            points.append({"lane": e.get("node") or None, "t": t, "kind": kind, "ev": i})
        elif kind in ("ban_set", "ban_removed", "record_end"):
            points.append({"lane": e.get("node"), "t": t, "kind": kind, "ev": i})
    # fault bands over the nodes each fault cuts off (its `nodes`; none named: every node)
    faults_open: dict[str, tuple[float, Event, int]] = {}
    for i, e in enumerate(history.events):
        if e["type"] == "fault_start":
            faults_open[str(e["fault"])] = (float(e["t"]), e, i)
        elif e["type"] == "fault_end" and str(e["fault"]) in faults_open:
            a, start_event, index = faults_open.pop(str(e["fault"]))
            bands.extend(_fault_bands(start_event, a, float(e["t"]), index))
    for a, start_event, index in faults_open.values():
        bands.extend(_fault_bands(start_event, a, end, index))
    # process bands: paused, killed, out of the cluster
    for node, cuts in m.cut.items():
        for a, b, why, index in cuts:
            if why.startswith("fault"):
                continue
            bands.append(
                {
                    "lane": None if node == "*" else node,
                    "start": a,
                    "end": _finite(b, end),
                    "why": why,
                    "kind": "fault" if why.startswith("fault") else "process",
                    "ev": index,
                }
            )
    violations = []
    for result in results.values():
        for v in result.violations:
            lanes_of = [
                str(history.events[i].get("node"))
                for i in v.events
                if i < len(history.events) and history.events[i].get("node")
            ]
            violations.append(
                {
                    "checker": v.checker,
                    "t": v.t if not math.isinf(v.t) else end,
                    "message": v.message,
                    "events": list(v.events),
                    "lane": lanes_of[-1] if lanes_of else CLIENT_LANE,
                }
            )
    by_type = Counter(str(e["type"]) for e in history.events)
    by_node = Counter(str(e.get("node")) for e in history.events if e.get("node"))
    return {
        "head": history.head,
        "end": end,
        "lanes": lanes,
        "spans": spans,
        "arrows": arrows,
        "ops": ops,
        "rpcs": rpcs,
        "bands": bands,
        "points": points,
        "violations": violations,
        "events": history.events,
        "summary": {
            "events": len(history.events),
            "by_type": dict(sorted(by_type.items())),
            "by_node": dict(sorted(by_node.items())),
            "checks": {
                n: {"status": r.status, "checked": r.checked, "violations": len(r.violations)}
                for n, r in results.items()
            },
        },
        "max_drawn": MAX_DRAWN,
    }


def _fault_bands(e: Event, start: float, end: float, index: int) -> list[dict[str, Any]]:
    why = f"fault {e['fault']} ({e.get('kind')})"
    lanes: list[str | None] = list(e.get("nodes") or []) or [None]
    return [
        {"lane": lane, "start": start, "end": end, "why": why, "kind": "fault", "ev": index}
        for lane in lanes
    ]


def render(history: History, results: dict[str, Result], *, title: str = "") -> str:
    data = timeline_data(history, results)
    # `</` must not close the script element early.
    payload = json.dumps(data, separators=(",", ":"), default=str).replace("</", "<\\/")
    name = title or f"tasksim run, seed {history.head.get('seed')}"
    return (
        _PAGE.replace("%TITLE%", html.escape(name))
        .replace("%STYLE%", _STYLE)
        .replace("%SCRIPT%", _SCRIPT)
        .replace("%DATA%", payload)
    )


def write_timeline(
    history: History, results: dict[str, Result], path: Path, *, title: str = ""
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(history, results, title=title), encoding="utf-8")
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>%TITLE% — tasksim timeline</title>
<style>%STYLE%</style></head>
<body>
<header><h1>%TITLE%</h1><div id="meta"></div></header>
<section id="summary"></section>
<div id="toolbar"><button id="fit">fit</button><button id="zin">zoom in</button><button id="zout">zoom out</button>
<label><input type="checkbox" id="show-rpc" checked> RPCs</label>
<label><input type="checkbox" id="show-arrows" checked> parent → child</label>
<span id="range"></span> <span id="hidden"></span></div>
<div id="legend"><span class="sw" style="background:#60a5fa"></span>cancellable task
<span class="sw" style="background:#a7f3d0"></span>other task
<span class="sw" style="background:#fdba74"></span>cancelled (hatched from then on)
<span class="sw" style="background:#c4b5fd"></span>client operation (red: failed, yellow: unknown)
<span class="sw" style="background:#f8c4c4"></span>fault
<span class="sw" style="background:#d1d5db"></span>paused, killed or out of the cluster
<span style="color:#0e7490">→</span> call <span style="color:#dc2626">⇢×</span> call without an answer
<span style="color:#374151">↓</span> parent → child <span style="color:#dc2626">▼</span> check failed (click it)</div>
<div id="chart"><svg id="svg" xmlns="http://www.w3.org/2000/svg"></svg></div>
<aside id="details"><em>Hover or click anything for its details.</em></aside>
<script id="data" type="application/json">%DATA%</script>
<script>%SCRIPT%</script>
</body></html>
"""

_STYLE = """
body{font:13px/1.35 system-ui,sans-serif;margin:0;color:#222;background:#fff}
header{padding:8px 14px;background:#f3f4f6;border-bottom:1px solid #ddd}
h1{font-size:16px;margin:0 0 2px}
#meta{color:#555}
#summary{padding:6px 14px;display:flex;gap:24px;flex-wrap:wrap;border-bottom:1px solid #eee}
#summary table{border-collapse:collapse;align-self:flex-start}#summary td,#summary th{padding:1px 8px;text-align:left}
#summary th{font-weight:600;color:#444}
.counts{max-width:760px;line-height:1.9}.chip{background:#eef2f7;border-radius:3px;padding:1px 6px;white-space:nowrap;font-size:12px}
.st-passed{color:#15803d}.st-failed{color:#b91c1c;font-weight:700}.st-vacuous{color:#a16207}
#toolbar{padding:6px 14px;display:flex;gap:8px;align-items:center}
#legend{padding:0 14px 6px;color:#444;font-size:12px}.sw{display:inline-block;width:12px;height:9px;margin:0 3px 0 10px;border:1px solid #999}
#chart{overflow:hidden;border-top:1px solid #ddd;border-bottom:1px solid #ddd;cursor:grab;user-select:none}
#details{padding:8px 14px;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px;min-height:80px}
.lane-label{font-weight:600;font-size:12px;fill:#111}
.lane-bg{fill:#fafafa}.lane-bg.odd{fill:#f2f4f7}
.span{fill:#60a5fa;stroke:#1d4ed8;stroke-width:.5}
.span.nc{fill:#a7f3d0;stroke:#047857}
.span.cancelled{fill:url(#hatch);stroke:#b45309}
.span.open{stroke-dasharray:3 2}
.op{fill:#c4b5fd;stroke:#5b21b6;stroke-width:.5}.op.fail{fill:#fca5a5}.op.info{fill:#fde68a}.op.open{fill:#e5e7eb}
.arrow{stroke:#374151;stroke-width:1;fill:none;marker-end:url(#head)}
.rpc{stroke:#0e7490;stroke-width:.8;fill:none;opacity:.7;marker-end:url(#rhead)}
.rpc.dropped{stroke:#dc2626;stroke-dasharray:4 3;opacity:1}
.drop-x{stroke:#dc2626;stroke-width:2}
.density{fill:#60a5fa;opacity:.8}
.fault{fill:#f87171;opacity:.18}.process{fill:#6b7280;opacity:.22}
.point{stroke:#111;stroke-width:1}
.violation{fill:#dc2626;stroke:#7f1d1d;cursor:pointer}
.witness{stroke:#dc2626 !important;stroke-width:3 !important}
.axis text{font-size:11px;fill:#555}.axis line{stroke:#ddd}
"""

_SCRIPT = r"""
(function(){
const D = JSON.parse(document.getElementById('data').textContent);
const svg = document.getElementById('svg');
const NS = 'http://www.w3.org/2000/svg';
const LABEL = 110, ROW = 12, PAD = 6, AXIS = 22;
const chart = document.getElementById('chart');
const details = document.getElementById('details');
let witnesses = new Set();

// lanes and rows: spans of one lane are stacked in rows so that none overlaps another
const laneRows = {}; D.lanes.forEach(l => laneRows[l] = []);
function place(lane, start, end){
  const rows = laneRows[lane] || (laneRows[lane] = []);
  for (let r = 0; r < rows.length; r++) if (rows[r] <= start) { rows[r] = end; return r; }
  rows.push(end); return rows.length - 1;
}
const sorted = D.spans.map((s, i) => i).sort((a, b) => D.spans[a].start - D.spans[b].start);
sorted.forEach(i => { const s = D.spans[i]; s.row = place(s.lane, s.start, Math.max(s.end, s.start + 1e-9)); });
D.ops.map((o, i) => i).sort((a, b) => D.ops[a].start - D.ops[b].start)
  .forEach(i => { const o = D.ops[i]; o.row = place('clients', o.start, Math.max(o.end, o.start + 1e-9)); });
const laneY = {}; let y = AXIS;
const laneH = {};
D.lanes.forEach(l => { const rows = Math.max(2, (laneRows[l] || []).length); laneY[l] = y; laneH[l] = rows * ROW + 2 * PAD; y += laneH[l]; });
const HEIGHT = y + 4;

let t0 = 0, t1 = Math.max(D.end, 1e-3);
function width(){ return Math.max(400, chart.clientWidth || 1200); }
function x(t){ return LABEL + (t - t0) / (t1 - t0) * (width() - LABEL - 10); }
function el(name, attrs, parent){ const e = document.createElementNS(NS, name); for (const k in attrs) e.setAttribute(k, attrs[k]); (parent || svg).appendChild(e); return e; }
function fmt(t){ return t.toFixed(3) + 's'; }
function show(obj){ details.textContent = JSON.stringify(obj, null, 2); }
function bind(e, info){ e.addEventListener('mouseenter', () => show(info())); e.addEventListener('click', ev => { ev.stopPropagation(); show(info()); }); }
function ev(i){ return i === null || i === undefined ? null : D.events[i]; }

// summary
(function(){
  const h = D.head;
  document.getElementById('meta').textContent = `engine ${h.engine} · seed ${h.seed} · ${D.summary.events} events over ${fmt(D.end)} · nodes ${D.lanes.slice(1).join(', ')}`;
  const s = document.getElementById('summary');
  let out = '<table><tr><th>checker</th><th>result</th><th>checked</th><th>violations</th></tr>';
  for (const [n, r] of Object.entries(D.summary.checks)) out += `<tr class="check" data-checker="${n}"><td>${n}</td><td class="st-${r.status}">${r.status}</td><td>${r.checked}</td><td>${r.violations}</td></tr>`;
  out += '</table><div class="counts"><b>events by type</b><br>';
  out += Object.entries(D.summary.by_type).map(([k, v]) => `<span class="chip">${k} ${v}</span>`).join(' ');
  out += '<br><b>events by node</b><br>';
  out += Object.entries(D.summary.by_node).map(([k, v]) => `<span class="chip">${k} ${v}</span>`).join(' ');
  s.innerHTML = out + '</div>';
})();

function spanY(lane, row){ return laneY[lane] + PAD + row * ROW; }

function draw(){
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = width();
  svg.setAttribute('width', W); svg.setAttribute('height', HEIGHT);
  const defs = el('defs', {});
  const pat = el('pattern', {id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)'}, defs);
  el('rect', {width: 6, height: 6, fill: '#fdba74'}, pat); el('line', {x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#b45309', 'stroke-width': 2}, pat);
  const mk = el('marker', {id: 'head', markerWidth: 8, markerHeight: 8, refX: 7, refY: 4, orient: 'auto'}, defs);
  el('path', {d: 'M0,0 L8,4 L0,8 z', fill: '#374151'}, mk);
  const mk2 = el('marker', {id: 'rhead', markerWidth: 6, markerHeight: 6, refX: 5, refY: 3, orient: 'auto'}, defs);
  el('path', {d: 'M0,0 L6,3 L0,6 z', fill: '#0e7490'}, mk2);
  let drawn = 0, hidden = 0;
  const visible = (a, b) => b >= t0 && a <= t1;
  const budget = () => drawn < D.max_drawn ? (drawn++, true) : (hidden++, false);
  // lanes
  D.lanes.forEach((l, i) => {
    el('rect', {class: 'lane-bg' + (i % 2 ? ' odd' : ''), x: 0, y: laneY[l], width: W, height: laneH[l]});
    const label = el('text', {class: 'lane-label', x: 6, y: laneY[l] + laneH[l] / 2 + 4, 'data-lane': l});
    label.textContent = l;
  });
  // axis
  const axis = el('g', {class: 'axis'});
  const step = niceStep((t1 - t0) / 10);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    el('line', {x1: x(t), x2: x(t), y1: AXIS - 4, y2: HEIGHT}, axis);
    const tx = el('text', {x: x(t) + 2, y: AXIS - 8}, axis); tx.textContent = (+t.toFixed(6)) + 's';
  }
  // bands: faults and process states
  D.bands.forEach(b => {
    if (!visible(b.start, b.end)) return;
    const lanes = b.lane ? [b.lane] : D.lanes.slice(1);
    lanes.forEach(l => {
      if (!(l in laneY)) return;
      const r = el('rect', {class: b.kind, x: x(b.start), y: laneY[l], width: Math.max(1, x(b.end) - x(b.start)), height: laneH[l], 'data-why': b.why});
      bind(r, () => ({band: b.why, from: b.start, to: b.end, event: ev(b.ev)}));
    });
  });
  // client operations
  D.ops.forEach(o => {
    if (!visible(o.start, o.end) || !budget()) return;
    const r = el('rect', {class: 'op ' + o.kind, x: x(o.start), y: spanY('clients', o.row), width: Math.max(2, x(o.end) - x(o.start)), height: ROW - 2, 'data-ev': o.ev});
    bind(r, () => ({operation: o.label, result: o.kind, status: o.status, from: o.start, to: o.end, invoke: ev(o.ev), completion: ev(o.end_ev)}));
  });
  // task spans: each one, or — too many in view — how many are live per lane over time
  const inView = D.spans.filter(s => visible(s.start, s.end));
  const dense = inView.length > D.max_drawn;
  if (dense) density(inView);
  D.spans.forEach((s, i) => {
    if (dense || !visible(s.start, s.end) || !budget()) return;
    const cls = 'span' + (s.cancellable ? '' : ' nc') + (s.open ? ' open' : '') + (witnesses.has(s.ev) || witnesses.has(s.end_ev) ? ' witness' : '');
    const r = el('rect', {class: cls, x: x(s.start), y: spanY(s.lane, s.row), width: Math.max(2, x(s.end) - x(s.start)), height: ROW - 2, 'data-task': s.task, 'data-ev': s.ev});
    const info = () => ({task: s.task, node: s.lane, action: s.action, parent: s.parent, cancellable: s.cancellable, registered: s.start, cancelled: s.cancelled, unregistered: s.open ? null : s.end, event: ev(s.ev), end: ev(s.end_ev)});
    bind(r, info);
    if (s.cancelled !== null) {  // hatched from the moment it was cancelled
      const c = el('rect', {class: 'span cancelled', x: x(s.cancelled), y: spanY(s.lane, s.row), width: Math.max(2, x(s.end) - x(s.cancelled)), height: ROW - 2, 'data-task': s.task});
      bind(c, info);
    }
  });
  // parent → child arrows
  if (!dense && document.getElementById('show-arrows').checked) D.arrows.forEach(a => {
    const p = D.spans[a.from], c = D.spans[a.to];
    if (!visible(Math.min(a.t, c.start), a.t) || !budget()) return;
    const line = el('line', {class: 'arrow', x1: x(a.t), y1: spanY(p.lane, p.row) + ROW / 2, x2: x(c.start) + 1, y2: spanY(c.lane, c.row) + ROW / 2, 'data-from': p.task, 'data-to': c.task});
    bind(line, () => ({arrow: 'parent → child', parent: p.task, child: c.task, from: p.lane, to: c.lane, at: a.t}));
  });
  // RPCs
  if (document.getElementById('show-rpc').checked) D.rpcs.forEach(r => {
    const end = r.end === null ? D.end : r.end;
    if (!(r.from in laneY) || !(r.to in laneY) || !visible(r.start, end) || !budget()) return;
    const y1 = laneY[r.from] + laneH[r.from] - PAD, y2 = laneY[r.to] + PAD;
    const line = el('line', {class: 'rpc' + (r.dropped ? ' dropped' : ''), x1: x(r.start), y1: y1, x2: x(end), y2: y2, 'data-method': r.method});
    bind(line, () => ({rpc: r.method, from: r.from, to: r.to, sent: r.start, ended: r.end, dropped: r.dropped, verdict: r.verdict, send: ev(r.ev), end: ev(r.end_ev)}));
    if (r.dropped) { const cx = x(end), cy = y2; el('path', {class: 'drop-x', d: `M${cx-4},${cy-4} L${cx+4},${cy+4} M${cx-4},${cy+4} L${cx+4},${cy-4}`}); }
  });
  // points: kill, pause, heal, bans, record ends
  D.points.forEach(p => {
    if (!visible(p.t, p.t)) return;
    const lanes = p.lane && (p.lane in laneY) ? [p.lane] : D.lanes.slice(1);
    lanes.forEach(l => {
      const c = el('line', {class: 'point ' + p.kind, x1: x(p.t), x2: x(p.t), y1: laneY[l] + 1, y2: laneY[l] + laneH[l] - 1, 'stroke-dasharray': p.kind.startsWith('ban') ? '2 2' : ''});
      bind(c, () => ({event: ev(p.ev)}));
    });
  });
  // violations
  D.violations.forEach((v, i) => {
    const lane = v.lane in laneY ? v.lane : 'clients';
    const cx = x(Math.min(Math.max(v.t, t0), t1)), cy = laneY[lane] + 2;
    const m = el('path', {class: 'violation', d: `M${cx},${cy + 12} L${cx - 7},${cy} L${cx + 7},${cy} z`, 'data-checker': v.checker, 'data-index': i});
    const title = el('title', {}, m); title.textContent = v.checker + ': ' + v.message;
    m.addEventListener('click', e => { e.stopPropagation(); witnesses = new Set(v.events); draw(); show({violation: v.checker, at: v.t, message: v.message, witnesses: v.events.map(k => ({line: k + 2, event: D.events[k]}))}); });
    m.addEventListener('mouseenter', () => show({violation: v.checker, at: v.t, message: v.message, witnesses: v.events.map(k => ({line: k + 2, event: D.events[k]}))}));
  });
  document.getElementById('range').textContent = `${fmt(t0)} – ${fmt(t1)}`;
  document.getElementById('hidden').textContent = (dense ? `${inView.length} tasks in view, drawn as live-task counts per lane: zoom in to see each. ` : '') + (hidden ? `${hidden} items not drawn: zoom in` : '');
}
function density(spans){
  const B = 240, step = (t1 - t0) / B;
  const counts = {};
  spans.forEach(s => {
    const c = counts[s.lane] || (counts[s.lane] = new Array(B).fill(0));
    const a = Math.max(0, Math.floor((s.start - t0) / step)), b = Math.min(B - 1, Math.floor((s.end - t0) / step));
    for (let k = a; k <= b; k++) c[k]++;
  });
  for (const [lane, c] of Object.entries(counts)) {
    if (!(lane in laneY)) continue;
    const max = Math.max(...c, 1), h = laneH[lane] - 2 * PAD;
    c.forEach((n, k) => {
      if (!n) return;
      const r = el('rect', {class: 'density', x: x(t0 + k * step), y: laneY[lane] + PAD + h * (1 - n / max), width: Math.max(1, x(t0 + (k + 1) * step) - x(t0 + k * step)), height: h * n / max, 'data-lane': lane});
      const title = el('title', {}, r); title.textContent = `${lane}: ${n} live tasks around ${fmt(t0 + (k + 0.5) * step)}`;
    });
  }
}
function niceStep(raw){ const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-6)))); for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p; return 10 * p; }
function zoom(f, at){ const c = at === undefined ? (t0 + t1) / 2 : at; const a = c - (c - t0) * f, b = c + (t1 - c) * f; t0 = Math.max(-0.01 * D.end, a); t1 = Math.min(D.end * 1.01 + 1e-3, b); if (t1 - t0 < 1e-5) t1 = t0 + 1e-5; draw(); }
chart.addEventListener('wheel', e => { e.preventDefault(); const r = svg.getBoundingClientRect(); const t = t0 + (e.clientX - r.left - LABEL) / (width() - LABEL - 10) * (t1 - t0); zoom(e.deltaY > 0 ? 1.25 : 0.8, t); }, {passive: false});
let drag = null;
chart.addEventListener('mousedown', e => { drag = {x: e.clientX, t0, t1}; chart.style.cursor = 'grabbing'; });
window.addEventListener('mouseup', () => { drag = null; chart.style.cursor = 'grab'; });
window.addEventListener('mousemove', e => { if (!drag) return; const dt = (e.clientX - drag.x) / (width() - LABEL - 10) * (drag.t1 - drag.t0); t0 = drag.t0 - dt; t1 = drag.t1 - dt; draw(); });
document.getElementById('fit').onclick = () => { t0 = 0; t1 = Math.max(D.end, 1e-3); draw(); };
document.getElementById('zin').onclick = () => zoom(0.5);
document.getElementById('zout').onclick = () => zoom(2);
document.getElementById('show-rpc').onchange = draw;
document.getElementById('show-arrows').onchange = draw;
window.addEventListener('resize', draw);
document.querySelectorAll('tr.check').forEach(row => row.addEventListener('click', () => {
  const i = D.violations.findIndex(v => v.checker === row.dataset.checker);
  if (i >= 0) { const v = D.violations[i]; witnesses = new Set(v.events); const span = Math.max((t1 - t0), 0.2); t0 = v.t - span / 2; t1 = v.t + span / 2; draw(); }
}));
draw();
document.body.setAttribute('data-ready', '1');
})();
"""
