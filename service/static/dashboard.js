// archscore dashboard: reads the JSON API, draws its charts as SVG; no outside resources.
"use strict";

const params = new URLSearchParams(location.search);
const apiKey = params.get("key") || localStorage.getItem("archscore-key") || "";
if (params.get("key")) localStorage.setItem("archscore-key", apiKey);
const $ = (id) => document.getElementById(id);
const CRITERIA = [["kendall_tau", "Kendall tau"], ["spearman", "Spearman"], ["pearson", "Pearson"],
  ["p_at_top", "P@top 5%", "0.05"], ["p_at_top", "P@top 50%", "0.5"], ["br_at", "BR@5%", "0.05"],
  ["wr_at", "WR@5%", "0.05"]];
let rankings = [];

async function api(path) {
  const response = await fetch(path, { headers: apiKey ? { "X-API-Key": apiKey } : {} });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  const v = Number(value), a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(2) : v.toFixed(3);
}

function option(select, value, text) {
  const o = document.createElement("option"); o.value = value; o.textContent = text ?? value; select.appendChild(o);
}

function svg(width, height) {
  const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  s.setAttribute("width", width); s.setAttribute("height", height); return s;
}

function add(parent, tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  parent.appendChild(e); return e;
}

// axes and a projection of data ranges onto the plot area
function frame(box, title, xs, ys, xlabel, ylabel) {
  const W = 320, H = 240, L = 48, B = 36, T = 22, R = 10;
  const s = svg(W, H); box.replaceChildren(s);
  add(s, "text", { x: W / 2, y: 14, "text-anchor": "middle", "font-size": 12 }, title);
  const lo = (v) => Math.min(...v), hi = (v) => Math.max(...v);
  const [x0, x1] = xs.length ? [lo(xs), hi(xs)] : [0, 1], [y0, y1] = ys.length ? [lo(ys), hi(ys)] : [0, 1];
  const px = (x) => L + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => H - B - (y1 === y0 ? 0.5 : (y - y0) / (y1 - y0)) * (H - B - T);
  add(s, "line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#444" });
  add(s, "line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#444" });
  add(s, "text", { x: (L + W) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11 }, xlabel);
  add(s, "text", { x: 12, y: (T + H - B) / 2, "font-size": 11, transform: `rotate(-90 12 ${(T + H - B) / 2})`,
    "text-anchor": "middle" }, ylabel);
  add(s, "text", { x: L, y: H - B + 13, "font-size": 10 }, fmt(x0));
  add(s, "text", { x: W - R, y: H - B + 13, "font-size": 10, "text-anchor": "end" }, fmt(x1));
  add(s, "text", { x: L - 3, y: H - B, "font-size": 10, "text-anchor": "end" }, fmt(y0));
  add(s, "text", { x: L - 3, y: T + 8, "font-size": 10, "text-anchor": "end" }, fmt(y1));
  return { s, px, py };
}

function lines(box, title, series, xlabel, ylabel) {
  const xs = series.flatMap((q) => q.points.map((p) => p[0])), ys = series.flatMap((q) => q.points.map((p) => p[1]));
  const { s, px, py } = frame(box, title, xs, ys, xlabel, ylabel);
  const colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
  series.forEach((q, i) => {
    const c = colours[i % colours.length];
    add(s, "polyline", { points: q.points.map((p) => `${px(p[0])},${py(p[1])}`).join(" "), fill: "none", stroke: c });
    add(s, "text", { x: 300, y: 34 + 12 * i, "font-size": 10, "text-anchor": "end", fill: c }, q.name);
  });
}

async function loadSpaces() {
  const spaces = await api("/v1/spaces");
  for (const sp of spaces) option($("space"), sp.name);
  if (params.get("space")) $("space").value = params.get("space");
  $("space").onchange = () => { fillTruth(spaces); loadRankings(); };
  fillTruth(spaces);
}

function fillTruth(spaces) {
  const sp = spaces.find((s) => s.name === $("space").value);
  $("truth-columns").replaceChildren();
  for (const c of sp.ground_truth_columns) option($("truth-columns"), c);
  $("truth").value = params.get("truth") || sp.ground_truth_columns[0] || "";
}

async function loadRankings() {
  const space = $("space").value, truth = $("truth").value;
  $("status").textContent = "loading…";
  try {
    const page = await api(`/v1/rankings/${space}?truth=${encodeURIComponent(truth)}&limit=100`);
    rankings = page.rankings;
  } catch (e) {
    rankings = []; $("status").textContent = `no rankings for ${space} / ${truth || "no ground truth"}`;
  }
  $("protocol").replaceChildren();
  for (const r of rankings) option($("protocol"), r.protocol_hash, `${r.protocol_hash} (n=${r.n})`);
  showProtocol();
}

function showProtocol() {
  const report = rankings.find((r) => r.protocol_hash === $("protocol").value);
  const head = $("criteria").querySelector("thead"), body = $("criteria").querySelector("tbody");
  head.replaceChildren(); body.replaceChildren(); $("estimator").replaceChildren();
  if (!report) { ["scatter", "ptop", "brwr"].forEach((id) => $(id).replaceChildren()); return; }
  const tr = document.createElement("tr");
  for (const h of ["estimator", "n", ...CRITERIA.map((c) => c[1])]) {
    const th = document.createElement("th"); th.textContent = h; tr.appendChild(th);
  }
  head.appendChild(tr);
  const names = Object.keys(report.estimators);
  for (const name of names) {
    const c = report.estimators[name], row = document.createElement("tr");
    row.dataset.estimator = name;
    const cells = [name, c.n, ...CRITERIA.map(([key, , k]) => fmt(k ? (c[key] || {})[k] : c[key]))];
    for (const v of cells) { const td = document.createElement("td"); td.textContent = v; row.appendChild(td); }
    body.appendChild(row);
    option($("estimator"), name);
  }
  $("status").textContent = `${names.length} estimators, ${report.n} architectures`;
  const curve = (key) => names.map((n) => ({ name: n, points: Object.entries(report.estimators[n][key] || {})
    .map(([k, v]) => [Number(k), v]).filter((p) => p[1] !== null).sort((a, b) => a[0] - b[0]) }));
  lines($("ptop"), "P@topK", curve("p_at_top"), "K (share of the architectures)", "P@topK");
  lines($("brwr"), "BR@K (solid) and WR@K", [...curve("br_at"), ...curve("wr_at").map((q) => ({ ...q, name: q.name + " WR" }))],
    "K", "rank / N (lower is better)");
  loadScatter();
}

async function loadScatter() {
  const space = $("space").value, estimator = $("estimator").value;
  if (!estimator) return;
  const data = await api(`/v1/rankings/${space}/points?protocol_hash=${$("protocol").value}` +
    `&truth=${encodeURIComponent($("truth").value)}&estimator=${estimator}`);
  let xs = data.points.map((p) => p[0]);
  const ys = data.points.map((p) => p[1]);
  // scores spanning orders of magnitude (synflow) are drawn on a log scale
  const log = xs.length > 1 && Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) > 1e3;
  if (log) xs = xs.map(Math.log10);
  const label = log ? `log10 ${estimator}` : estimator;
  const { s, px, py } = frame($("scatter"), `${estimator} against ${data.truth}`, xs, ys, label, data.truth);
  data.points.forEach(([, y, arch], i) => {
    add(add(s, "circle", { cx: px(xs[i]), cy: py(y), r: 2.5, fill: "#1f77b4", "fill-opacity": 0.6 }), "title", {}, arch);
  });
}

async function loadStudies() {
  const runs = await api("/v1/studies/runs");
  const box = $("studies");
  if (!runs.length) return;
  box.replaceChildren(); box.className = "";
  for (const run of runs) {
    const div = document.createElement("div"), text = document.createElement("p");
    text.textContent = `${run.study} on ${run.space} (${run.truth}): ${run.status}, ` +
      `${run.progress.done}/${run.progress.total} architectures scored for it`;
    div.appendChild(text);
    for (const url of Object.values(run.figures || {})) {
      const img = document.createElement("img"); img.className = "figure"; img.src = url; img.alt = url;
      div.appendChild(img);
    }
    box.appendChild(div);
  }
}

async function loadJobs() {
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren();
  for (const job of await api("/v1/jobs")) {
    const tr = document.createElement("tr");
    for (const v of [job.job_id.slice(0, 8), job.space, job.status, `${job.progress.done}/${job.progress.total}`]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

async function refresh() {
  await loadRankings();
  await Promise.all([loadStudies(), loadJobs()]);
}

$("protocol").onchange = showProtocol;
$("estimator").onchange = loadScatter;
$("truth").onchange = loadRankings;
$("refresh").onclick = refresh;
loadSpaces().then(refresh).then(() => { document.body.dataset.ready = "1"; })
  .catch((e) => { $("status").textContent = String(e); $("status").className = "error"; });
setInterval(() => loadJobs().catch(() => {}), 5000);  // jobs in flight, with their progress
