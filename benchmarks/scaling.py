"""Scale: the same uncached score request with one scoring worker and with two, side by side in one run.

The request: C NB201 cells of distinct isomorphism classes (default 200) with synflow, jacob_cov and
params under the default protocol (batch 128, one batch); each timed run uses a fresh protocol seed,
so nothing is cached. Its time runs from the POST to the job reading ``done`` (GET /v1/jobs/{id}).

Configurations, each a set of worker processes (Celery, concurrency 1) started once and warmed up
(torch imported, data loaded):
- ``1 worker``: one process with cores / 2 torch threads (ARCHSCORE_TORCH_THREADS), the share of the
  machine each of two workers gets;
- ``2 workers``: two such processes, so the cores are not oversubscribed; their ratio to ``1 worker`` is
  how scoring scales out (goal >= 1.7);
- ``1 worker, all threads``: one process with as many torch threads as cores, for comparison: what two
  processes gain over one that uses every core through torch's intra-op threads;
- ``2 hosts`` (with --hosts; root): the two workers on hosts B and C, network namespaces joined to host A
  by a bridge (tests/helpers/netns.py), so every message crosses a link; Redis, the API and the other
  configurations' workers then run on host A, and all take turns in the same run.
Only the configuration being measured consumes the scoring queue (the others' consumers are cancelled
over Celery's control channel), and the configurations take turns, R rounds; the medians of cells
per second are reported, and the ratios.

    python benchmarks/scaling.py [--cells 200] [--rounds 3] [--hosts]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script: this folder would hide the service package

import httpx

from archscore.contract.broker import make_celery
from archscore.contract.settings import Settings
from archscore.contract.tasks import SCORING_QUEUE
from archscore.estimators.spaces import get_space
from archscore.service import runner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the network namespaces the tests use (--hosts)
ESTIMATORS = ["synflow", "jacob_cov", "params"]
CORES = os.cpu_count() or 2


def cells(n: int, seed: int) -> list[str]:
    space = get_space("nb201")
    return [space.to_string(a) for a in space.sample(n, seed=seed, deisomorphic=True)]


class Stack:
    """redis-server and the API (on host A when ``hosts`` is given), and named groups of workers."""

    def __init__(self, tmp: Path, hosts=None) -> None:
        self.tmp, self.hosts, self.procs = tmp, hosts, []
        tmp.mkdir(parents=True)
        self.groups: dict[str, list[str]] = {}  # configuration -> its workers' node names
        address = hosts.addresses[hosts.hub] if hosts else "127.0.0.1"
        port, api_port = runner.free_port(), runner.free_port()
        self.redis_url, self.base = f"redis://{address}:{port}/0", f"http://{address}:{api_port}"
        redis_cmd = [
            runner.redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            address,
            "--save",
            "",
            "--maxmemory",
            "512mb",
            "--maxmemory-policy",
            "volatile-lru",
        ]
        self._spawn("redis", redis_cmd, hosts and hosts.hub)
        runner.wait_for_redis(self.redis_url, 30)
        self._spawn("api", runner.api_command(address, api_port), hosts and hosts.hub)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.base}/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not start: {(tmp / 'api.log').read_text()[-2000:]}") from None
                time.sleep(0.3)
        self.celery = make_celery(Settings(redis_url=self.redis_url))

    def _spawn(self, name: str, command: list[str], host: str | None, threads: int | None = None) -> None:
        env = runner.child_env(self.redis_url) | {"ARCHSCORE_DATA_DIR": str(self.tmp / name)}
        if threads:
            env["ARCHSCORE_TORCH_THREADS"] = str(threads)
        if self.hosts and host:
            command = self.hosts.command(host, command)
        log = open(self.tmp / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen(command, env=env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT))

    def add_workers(self, group: str, threads: int, hosts: list[str | None]) -> None:
        names = []
        for i, host in enumerate(hosts):
            name = f"{group.replace(' ', '-').replace(',', '')}-{i}"
            self._spawn(name, runner.worker_command(name=name), host, threads)
            names.append(f"{name}@{os.uname().nodename}")
        self.groups[group] = names

    def only(self, group: str) -> None:
        """Let the workers of ``group`` alone consume the scoring queue."""
        for other, names in self.groups.items():
            if other != group:
                self.celery.control.cancel_consumer(SCORING_QUEUE, destination=names, reply=True, timeout=5)
        self.celery.control.add_consumer(SCORING_QUEUE, destination=self.groups[group], reply=True, timeout=5)

    def wait_workers(self, timeout: float = 90) -> None:
        expected = {n for names in self.groups.values() for n in names}
        deadline = time.monotonic() + timeout
        while True:
            seen = set()
            for reply in self.celery.control.ping(timeout=1.0) or []:
                seen |= set(reply)
            if expected <= seen:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers {sorted(expected - seen)} did not start")
            time.sleep(0.5)

    def score(self, archs: list[str], seed: int) -> float:
        """Seconds from the POST to the job done, every score present."""
        body = {"space": "nb201", "archs": archs, "estimators": ESTIMATORS, "protocol": {"seed": seed}}
        started = time.perf_counter()
        job = httpx.post(f"{self.base}/v1/scores", json=body, timeout=60).json()
        while job["status"] != "done":
            job = httpx.get(f"{self.base}/v1/jobs/{job['job_id']}?wait=30", timeout=60).json()
            if job["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"job {job['status']}")
        elapsed = time.perf_counter() - started
        missing = [r["arch"] for r in job["results"] if r.get("error") or r["scores"]["synflow"] is None]
        if missing:
            raise RuntimeError(f"{len(missing)} architectures without scores, e.g. {job['results'][0]}")
        return elapsed

    def close(self) -> None:
        runner.stop(self.procs)


def measure(stack: Stack, configurations: list[str], archs: list[str], rounds: int, seed: list[int]) -> dict:
    """cells/s of each configuration, per round, the configurations taking turns."""
    rates: dict[str, list[float]] = {c: [] for c in configurations}
    for config in configurations:  # warm-up: every worker of it imports torch and loads the data
        stack.only(config)
        stack.score(archs[: 4 * len(stack.groups[config]) * 8], seed=seed[0])
        seed[0] += 1
    for r in range(rounds):
        for config in configurations:
            stack.only(config)
            seconds = stack.score(archs, seed=seed[0])
            seed[0] += 1
            rates[config].append(len(archs) / seconds)
            print(f"  round {r + 1}: {config:21s} {len(archs) / seconds:6.2f} cells/s ({seconds:.1f} s)", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", action="store_true", help="also two workers on two other hosts (root)")
    args = parser.parse_args()
    archs = cells(args.cells, seed=0)
    seed = [1000]  # protocol seeds: a fresh one per run, so nothing is cached
    print(f"# {args.cells} NB201 cells, {', '.join(ESTIMATORS)}; {CORES} cores; medians of {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as cleanup:
        net = None
        if args.hosts:
            from helpers.netns import hosts, unavailable

            if unavailable():
                raise SystemExit(f"--hosts: {unavailable()}")
            net = cleanup.enter_context(hosts("a", "b", "c"))
        stack = Stack(Path(tmp) / "stack", net)
        cleanup.callback(stack.close)
        home = net.hub if net else None  # with --hosts the one-host configurations run on host A
        half = max(1, CORES // 2)
        configurations = ["1 worker", "2 workers", "1 worker, all threads"]
        stack.add_workers("1 worker", half, [home])
        stack.add_workers("2 workers", half, [home, home])
        stack.add_workers("1 worker, all threads", CORES, [home])
        if net:
            stack.add_workers("2 hosts", half, ["b", "c"])
            configurations.append("2 hosts")
        stack.wait_workers()
        rates = measure(stack, configurations, archs, args.rounds, seed)
    medians = {c: statistics.median(v) for c, v in rates.items()}
    for config, value in medians.items():
        print(f"{config:21s}: {value:6.2f} cells/s (median of {len(rates[config])})")
    print(f"2 workers / 1 worker: {medians['2 workers'] / medians['1 worker']:.2f}x (goal >= 1.7)")
    print(f"2 workers / 1 worker with all threads: {medians['2 workers'] / medians['1 worker, all threads']:.2f}x")
    if "2 hosts" in medians:
        print(f"2 hosts / 2 workers on host A: {medians['2 hosts'] / medians['2 workers']:.2f}x")


if __name__ == "__main__":
    main()
