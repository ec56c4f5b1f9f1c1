// archscore dashboard: reads the JSON API and draws with the vendored Chart.js; no outside resources.
"use strict";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const KEY = "archscore-key";  // sessionStorage: this tab only, never the URL
const CRITERIA = [["kendall_tau", "Kendall tau"], ["spearman", "Spearman"], ["pearson", "Pearson"],
  ["p_at_top", "P@top 5%", "0.05"], ["p_at_top", "P@top 50%", "0.5"], ["br_at", "BR@5%", "0.05"],
  ["wr_at", "WR@5%", "0.05"], ["ndcg", "nDCG"]];
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3], [1, 3]];
const MARKERS = ["circle", "rect", "triangle", "rectRot", "star", "crossRot", "rectRounded", "cross"];
let rankings = [], spaces = [], report = null, notice = "";
const charts = {};
window.archscore = { charts, csv: () => criteriaCsv() };  // for tests and the console

async function api(path) {
  const key = sessionStorage.getItem(KEY);
  const response = await fetch(path, { headers: key ? { "X-API-Key": key } : {} });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
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

function draw(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart($(id), config);
}

function clearCharts() {
  for (const id of Object.keys(charts)) { charts[id].destroy(); delete charts[id]; }
}

const legend = { position: "right", labels: { boxWidth: 14, usePointStyle: true } };

// one chart per criterion curve; series told apart by colour, dash and marker
function curveChart(id, title, key, lowerIsBetter) {
  const names = Object.keys(report.estimators);
  const datasets = names.map((name, i) => ({
    label: name,
    data: Object.entries(report.estimators[name][key] || {}).filter(([, v]) => v !== null)
      .map(([k, v]) => ({ x: Number(k), y: v })).sort((a, b) => a.x - b.x),
    borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
    borderDash: DASHES[i % DASHES.length], pointStyle: MARKERS[i % MARKERS.length], pointRadius: 4, showLine: true,
  }));
  draw(id, { type: "scatter", data: { datasets }, options: {
    animation: false, maintainAspectRatio: false,
    plugins: { title: { display: true, text: title }, legend },
    scales: {
      x: { type: "logarithmic", title: { display: true, text: "K (share of the architectures)" } },
      y: { title: { display: true, text: lowerIsBetter ? `${title} (lower is better)` : title } },
    } } });
}

async function chooseSpace() {
  spaces = await api("/v1/spaces");
  for (const sp of spaces) option($("space"), sp.name);
  const asked = params.get("space");
  if (asked && spaces.some((s) => s.name === asked)) { $("space").value = asked; return; }
  if (asked) notice = `no space ${asked}; `;
  // open on the space with the most scored architectures
  const counts = await Promise.all(spaces.map(async (sp) => {
    const truth = sp.ground_truth_columns[0];
    if (!truth) return 0;
    try {
      const page = await api(`/v1/rankings/${sp.name}?truth=${encodeURIComponent(truth)}&limit=100`);
      return Math.max(0, ...page.rankings.map((r) => r.n || 0));
    } catch (e) { return 0; }
  }));
  $("space").value = spaces[counts.indexOf(Math.max(...counts))].name;
  if (notice) notice += `showing ${$("space").value}. `;
}

function status(text) { $("status").textContent = notice + text; }

function fillTruth() {
  const sp = spaces.find((s) => s.name === $("space").value);
  $("truth-columns").replaceChildren();
  for (const c of sp.ground_truth_columns) option($("truth-columns"), c);
  $("truth").value = (params.get("space") === sp.name && params.get("truth")) || sp.ground_truth_columns[0] || "";
}

async function loadRankings() {
  const space = $("space").value, truth = $("truth").value;
  status("loading…");
  rankings = [];
  if (truth) {
    try {
      rankings = (await api(`/v1/rankings/${space}?truth=${encodeURIComponent(truth)}&limit=100`)).rankings;
    } catch (e) { rankings = []; }
  }
  $("protocol").replaceChildren();
  for (const r of rankings) option($("protocol"), r.protocol_hash, `${r.protocol_hash} (n=${r.n})`);
  showProtocol();
  if (!rankings.length) {
    status(truth ? `no rankings yet for ${space} against ${truth}: score architectures first`
      : `${space} has no built-in ground truth: upload a table and name it`);
  }
}

function showProtocol() {
  report = rankings.find((r) => r.protocol_hash === $("protocol").value) || null;
  const head = $("criteria").querySelector("thead"), body = $("criteria").querySelector("tbody");
  head.replaceChildren(); body.replaceChildren(); $("estimator").replaceChildren();
  if (!report) { clearCharts(); return; }
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
  status(`${names.length} estimators, ${report.n} architectures`);
  curveChart("ptop", "P@topK", "p_at_top", false);
  curveChart("br", "BR@K", "br_at", true);
  curveChart("wr", "WR@K", "wr_at", true);
  loadScatter().catch((e) => { $("status").textContent = String(e); });
}

function criteriaCsv() {
  const rows = [...$("criteria").querySelectorAll("tr")].map((tr) => [...tr.children].map((c) => c.textContent));
  return rows.map((r) => r.map((v) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v)).join(",")).join("\n") + "\n";
}

function exportCsv() {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([criteriaCsv()], { type: "text/csv" }));
  link.download = `archscore-${$("space").value}-${$("protocol").value}.csv`;
  link.click();
}

function ranks(values) {
  const order = values.map((v, i) => [v, i]).sort((a, b) => a[0] - b[0]);
  const out = new Array(values.length);
  order.forEach(([, i], r) => { out[i] = r + 1; });
  return out;
}

async function loadScatter() {
  const space = $("space").value, estimator = $("estimator").value;
  if (!estimator) return;
  const data = await api(`/v1/rankings/${space}/points?protocol_hash=${$("protocol").value}` +
    `&truth=${encodeURIComponent($("truth").value)}&estimator=${estimator}`);
  const scores = data.points.map((p) => p[0]);
  let axis = $("axis").value;
  if (axis === "auto") {  // scores spanning orders of magnitude (synflow: 1e26..1e34) on a log axis
    const positive = scores.length > 1 && Math.min(...scores) > 0;
    axis = positive && Math.max(...scores) / Math.min(...scores) > 1e3 ? "logarithmic" : "linear";
  }
  if (axis === "logarithmic" && !(Math.min(...scores) > 0)) axis = "linear";
  const xs = axis === "rank" ? ranks(scores) : scores;
  const points = data.points.map(([score, truth, arch], i) => ({ x: xs[i], y: truth, score, arch }));
  draw("scatter", { type: "scatter", data: { datasets: [{ label: `${estimator} (${data.points.length})`, data: points,
    backgroundColor: "rgba(31, 119, 180, 0.6)", pointRadius: 3 }] }, options: {
    animation: false, maintainAspectRatio: false,
    plugins: {
      title: { display: true, text: `${estimator} against ${data.truth}` }, legend,
      tooltip: { callbacks: { label: (c) => [c.raw.arch, `${estimator} ${fmt(c.raw.score)}`,
        `${data.truth} ${fmt(c.raw.y)}`] } },
    },
    scales: {
      x: { type: axis === "rank" ? "linear" : axis,
        title: { display: true, text: axis === "rank" ? `rank of ${estimator}` : `${estimator}${axis === "logarithmic" ? " (log)" : ""}` } },
      y: { title: { display: true, text: data.truth } },
    } } });
}

function studyBlock(text, figures, kind) {
  const div = document.createElement("div"), p = document.createElement("p");
  div.className = `study ${kind}`; p.textContent = text; div.appendChild(p);
  for (const url of Object.values(figures || {})) {
    const img = document.createElement("img"); img.className = "figure"; img.src = url; img.alt = url;
    div.appendChild(img);
  }
  return div;
}

// the service's studies, then those run by `archscore study` on this host (kept in the data folder)
async function loadStudies() {
  const [runs, local] = await Promise.all([api("/v1/studies/runs"),
    api("/v1/dashboard/cli-studies").catch(() => [])]);
  const box = $("studies");
  if (!runs.length && !local.length) return;
  box.replaceChildren(); box.className = "";
  for (const run of runs) {
    box.appendChild(studyBlock(`${run.study} on ${run.space} (${run.truth}): ${run.status}, ` +
      `${run.progress.done}/${run.progress.total} architectures scored for it`, run.figures, "service"));
  }
  for (const run of local) {
    const when = run.created ? new Date(run.created * 1000).toISOString().slice(0, 16).replace("T", " ") : "";
    box.appendChild(studyBlock(`${run.study} on ${run.space} (${run.truth}, ${run.n} architectures): ` +
      `archscore study, ${when} UTC`, run.figures, "cli"));
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

$("key-form").onsubmit = (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $("key").value); $("key").value = "";
  start();
};
$("space").onchange = () => { notice = ""; fillTruth(); loadRankings(); };
$("protocol").onchange = showProtocol;
$("estimator").onchange = () => loadScatter();
$("axis").onchange = () => loadScatter();
$("truth").onchange = loadRankings;
$("refresh").onclick = refresh;
$("export").onclick = exportCsv;

function start() {
  $("space").replaceChildren();
  chooseSpace().then(() => { fillTruth(); return refresh(); }).then(() => { document.body.dataset.ready = "1"; })
    .catch((e) => { $("status").textContent = String(e); $("status").className = "error"; document.body.dataset.ready = "1"; });
}
start();
setInterval(() => loadJobs().catch(() => {}), 5000);  // jobs in flight, with their progress
