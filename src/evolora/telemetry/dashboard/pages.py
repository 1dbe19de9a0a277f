"""The dashboard's three HTML pages; each draws itself from the JSON API and polls it.

Polling (every POLL_MS) asks only for a run's version token; figures are fetched again only when
it changed, and redrawn in place with Plotly.react, so a chart gains points as a run writes them.
"""

from __future__ import annotations

POLL_MS = 1500

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { padding: .25em .6em;
border-bottom: 1px solid #ddd; text-align: left; } a { color: #1a5fb4; }
.running { color: #1a7f37; font-weight: bold; } .crashed { color: #c01c28; font-weight: bold; }
.finished { color: #555; } .stopped { color: #a05a00; } pre { background: #f6f6f6;
padding: .6em; max-height: 24em; overflow: auto; } .gone { color: #c01c28; font-weight: bold; }
"""

_COMMON = """
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;',
  '"':'&quot;',"'":'&#39;'}[c]));
async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.status);
  return body;
}
const q = encodeURIComponent;
const status = r => `<span class="${esc(r.status)}" data-status="${esc(r.status)}">` +
  `${esc(r.status)}</span> ${r.done ?? '–'}${r.total ? ' / ' + r.total : ''}`;
"""

_INDEX = """
<h1>evolora runs</h1><p id="root"></p>
<p><button id="compare">Compare selected runs</button></p>
<table id="runs"><thead><tr><th></th><th>run</th><th>system</th><th>status</th>
<th>started</th><th>host</th></tr></thead><tbody></tbody></table>
<script>
async function refresh() {
  const body = await getJSON('/api/runs');
  document.getElementById('root').textContent = 'Runs folder: ' + body.root;
  const picked = new Set([...document.querySelectorAll('input:checked')].map(i => i.value));
  document.querySelector('#runs tbody').innerHTML = body.runs.map(r => `<tr>
    <td><input type="checkbox" value="${esc(r.run)}" ${picked.has(r.run) ? 'checked' : ''}></td>
    <td><a class="run-link" href="/run?run=${q(r.run)}">${esc(r.run)}</a></td>
    <td>${esc(r.system)}</td><td>${status(r)}</td><td>${esc(r.started_at)}</td>
    <td>${esc(r.host)}</td></tr>`).join('') || '<tr><td colspan="6">no run folders yet</td></tr>';
}
document.getElementById('compare').onclick = () => {
  const runs = [...document.querySelectorAll('input:checked')].map(i => 'run=' + q(i.value));
  if (runs.length) location.href = '/compare?' + runs.join('&');
};
refresh(); setInterval(refresh, POLL);
</script>
"""

_RUN = """
<p><a href="/">all runs</a></p><h1 id="title"></h1><p id="status"></p>
<div id="figures"></div>
<h2>Chart any field</h2>
<select id="stream"></select> <select id="field"></select><div id="figure-field"></div>
<h2>Streams</h2><ul id="streams"></ul>
<h2>config.yaml</h2><pre id="config"></pre><h2>meta.json</h2><pre id="meta"></pre>
<script>
const run = new URLSearchParams(location.search).get('run');
let shown = null, timer = null;
function draw(figure) {
  let div = document.getElementById('figure-' + figure.id);
  if (!div) {
    div = document.createElement('div'); div.id = 'figure-' + figure.id; div.className = 'figure';
    document.getElementById('figures').appendChild(div);
  }
  Plotly.react(div, figure.data, figure.layout, {responsive: true});
  div.dataset.points = figure.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}
async function drawField() {
  const stream = document.getElementById('stream').value;
  const key = document.getElementById('field').value;
  if (!stream || !key) return;
  const body = await getJSON(`/api/compare?run=${q(run)}&stream=${q(stream)}&key=${q(key)}`);
  body.figure.id = 'field'; draw(body.figure);
}
async function fields() {
  const stream = document.getElementById('stream').value;
  const body = await getJSON(`/api/fields?run=${q(run)}&stream=${q(stream)}`);
  document.getElementById('field').innerHTML =
    body.fields.map(f => `<option>${esc(f)}</option>`).join('');
  drawField();
}
async function details() {
  const body = await getJSON('/api/meta?run=' + q(run));
  document.getElementById('title').textContent = body.run;
  document.getElementById('config').textContent = body.config;
  document.getElementById('meta').textContent = JSON.stringify(body.meta, null, 1);
  document.getElementById('streams').innerHTML = Object.entries(body.streams).map(([n, size]) =>
    `<li><a href="/api/stream?run=${q(run)}&name=${q(n)}&limit=100">${esc(n)}</a> ` +
    `(${size} bytes)</li>`).join('');
  const select = document.getElementById('stream');
  if (!select.options.length) {
    select.innerHTML = Object.keys(body.streams).map(n => `<option>${esc(n)}</option>`).join('');
    fields();
  }
}
async function poll() {
  try {
    const now = await getJSON('/api/version?run=' + q(run));
    document.getElementById('status').innerHTML = status(now);
    if (now.version === shown) return;
    shown = now.version;
    const body = await getJSON('/api/panels?run=' + q(run));
    body.figures.forEach(draw);
    details(); drawField();
  } catch (error) {
    document.getElementById('status').innerHTML =
      `<span class="gone">${esc(error.message)}</span>`;
    clearInterval(timer);
  }
}
document.getElementById('stream').onchange = fields;
document.getElementById('field').onchange = drawField;
poll(); timer = setInterval(poll, POLL);
</script>
"""

_COMPARE = """
<p><a href="/">all runs</a></p><h1>Compare runs</h1><ul id="names"></ul>
<select id="stream"><option>gen_summaries</option><option>evaluations</option>
<option>episodes</option></select> <select id="field"></select>
<div id="figure-compare"></div>
<script>
const runs = new URLSearchParams(location.search).getAll('run');
const query = runs.map(r => 'run=' + q(r)).join('&');
document.getElementById('names').innerHTML = runs.map(r => `<li>${esc(r)}</li>`).join('');
async function fields() {
  const stream = document.getElementById('stream').value;
  const body = await getJSON(`/api/fields?${query}&stream=${q(stream)}`);
  document.getElementById('field').innerHTML =
    body.fields.map(f => `<option>${esc(f)}</option>`).join('');
  draw();
}
async function draw() {
  const stream = document.getElementById('stream').value;
  const key = document.getElementById('field').value;
  if (!key) return;
  const body = await getJSON(`/api/compare?${query}&stream=${q(stream)}&key=${q(key)}`);
  Plotly.react('figure-compare', body.figure.data, body.figure.layout, {responsive: true});
}
document.getElementById('stream').onchange = fields;
document.getElementById('field').onchange = draw;
fields(); setInterval(draw, POLL);
</script>
"""

_BODIES = {"index": _INDEX, "run": _RUN, "compare": _COMPARE}
_TITLES = {"index": "evolora runs", "run": "evolora run", "compare": "evolora comparison"}


def page(which: str) -> str:
    """The HTML of page `which` (index, run or compare)."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_TITLES[which]}</title><style>{_STYLE}</style>"
        '<script src="/static/plotly.js"></script>'
        f"<script>const POLL = {POLL_MS};{_COMMON}</script></head><body>"
        f"{_BODIES[which]}</body></html>"
    )
