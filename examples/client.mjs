#!/usr/bin/env node
// archscore from Node.js (>= 18, global fetch; no npm packages).
//
//   node examples/client.mjs [BASE_URL] [--protocol JSON] [--estimators a,b] [--truth COLUMN] [--timeout SECONDS]
//
// BASE_URL defaults to $ARCHSCORE_URL, then http://127.0.0.1:8000. The protocol may also come from
// $ARCHSCORE_PROTOCOL (e.g. '{"batch_size": 16}'); $ARCHSCORE_API_KEY is sent as X-API-Key.
// Scores three NAS-Bench-201 cells given in three encodings (string form, NASLib op list, index), long-polls
// the job, prints one line per architecture and the Kendall tau of each estimator. Exits 1 on any error.

const ARCHS = [
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
  [0, 1, 2, 3, 4, 0],
  1234,
];

class HttpError extends Error {}

function parseArgs(argv) {
  const opts = {
    baseUrl: process.env.ARCHSCORE_URL || "http://127.0.0.1:8000",
    protocol: process.env.ARCHSCORE_PROTOCOL || null,
    estimators: "synflow,params",
    truth: "cifar10_test",
    timeout: 300,
  };
  const flags = { "--protocol": "protocol", "--estimators": "estimators", "--truth": "truth", "--timeout": "timeout" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    if (flag === "-h" || flag === "--help") {
      console.log("usage: node examples/client.mjs [BASE_URL] [--protocol JSON] [--estimators a,b] [--truth COLUMN] [--timeout S]");
      process.exit(0);
    } else if (flag in flags) {
      const value = inline !== undefined ? inline : argv[++i];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      opts[flags[flag]] = value;
    } else if (!arg.startsWith("-")) {
      opts.baseUrl = arg;
    } else {
      throw new Error(`unknown option ${arg}`);
    }
  }
  opts.baseUrl = opts.baseUrl.replace(/\/+$/, "");
  if (opts.protocol) {
    try {
      opts.protocol = JSON.parse(opts.protocol);
    } catch (err) {
      throw new Error(`the protocol must be a JSON object: ${err.message}`);
    }
  }
  opts.estimators = opts.estimators.split(",").map((s) => s.trim()).filter(Boolean);
  opts.timeout = Number(opts.timeout);
  return opts;
}

async function call(opts, method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (process.env.ARCHSCORE_API_KEY) headers["X-API-Key"] = process.env.ARCHSCORE_API_KEY;
  let response;
  try {
    response = await fetch(opts.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new HttpError(`cannot reach ${opts.baseUrl}: ${err.cause?.message || err.message}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below when the status is an error
  }
  if (!response.ok) {
    const error = data && data.error;
    let message = error ? error.message : text.slice(0, 300) || response.statusText;
    if (error && Array.isArray(error.details) && error.details.length) {
      message += " (" + error.details.map((d) => `${d.field}: ${d.reason}`).join("; ") + ")";
    }
    throw new HttpError(`HTTP ${response.status} ${method} ${path}: ${message}`);
  }
  return data;
}

function fmt(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(4) : value.toFixed(4);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const request = { space: "nb201", archs: ARCHS, estimators: opts.estimators, truth: opts.truth };
  if (opts.protocol) request.protocol = opts.protocol;

  let job = await call(opts, "POST", "/v1/scores", request);
  console.log(`job ${job.job_id}: ${job.status}, ${job.cached} cached, protocol ${job.protocol_hash}`);
  const deadline = Date.now() + opts.timeout * 1000;
  while (job.status !== "done") {
    const left = (deadline - Date.now()) / 1000;
    if (left <= 0) throw new HttpError(`job ${job.job_id} not done after ${opts.timeout} s`);
    const wait = Math.max(1, Math.min(30, Math.floor(left)));
    job = await call(opts, "GET", `/v1/jobs/${encodeURIComponent(job.job_id)}?wait=${wait}`);
  }

  for (const row of job.results) {
    const scores = Object.entries(row.scores)
      .map(([name, value]) => `${name}=${fmt(value)}${row.reasons?.[name] ? ` (${row.reasons[name]})` : ""}`)
      .join(" ");
    const error = row.error ? ` error=${row.error}` : "";
    console.log(`arch=${row.arch} ${scores} ${job.truth}=${fmt(row.ground_truth)}${error}`);
  }

  const stats = job.rankings;
  if (!stats) {
    console.log("no rankings (no ground truth requested)");
    return;
  }
  for (const name of job.estimators) {
    const report = stats.estimators?.[name];
    const tau = report ? fmt(report.kendall_tau) : "n/a (fewer than 2 scored architectures)";
    console.log(`kendall_tau ${name}=${tau} over n=${report ? report.n : 0} architectures scored so far (${stats.truth})`);
  }
}

main().catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
