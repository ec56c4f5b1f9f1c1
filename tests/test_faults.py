"""Faults with real processes: workers that die whole, a live worker's long chunk, a supervised
`archscore up` losing a worker and Redis, a Redis outage seen from a real API process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from helpers.http import readyz, status_of
from helpers.scoring import cells, request
from helpers.stack import REPO, UP, alive, child, child_env, child_pids, cmdline, descendants, stopped
from helpers.waiting import wait_until

from archscore.contract import store
from archscore.service import runner


def _worker(name: str, concurrency: int = 1) -> list[str]:
    return runner.worker_command(concurrency, "info", name=name)


def _api(test_redis, settings_env, **settings):
    settings_env(redis_url=test_redis.crash_url, **settings)
    from fastapi.testclient import TestClient

    from archscore.service.app import create_app

    return TestClient(create_app())


def _stop_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _running_on(crash, job_id: str, n: int, node: str, done: set[int]) -> int | None:
    """A chunk the worker ``node`` has started and not finished: Celery's STARTED record, and the task
    body has counted its attempt (STARTED is written before the body runs; a worker frozen between
    the two has not begun the chunk, and its redelivery is then the chunk's first attempt)."""
    import json

    for i in range(n):
        meta = crash.get(f"celery-task-meta-{job_id}.{i}")
        if meta and i not in done:
            meta = json.loads(meta)
            attempted = int(crash.get(f"{store.job_key(job_id)}:attempts:{i}") or 0) >= 1
            if meta["status"] == "STARTED" and meta["result"]["hostname"].startswith(f"{node}@") and attempted:
                return i
    return None


@pytest.mark.slow
@pytest.mark.timeout(480)  # the job may take its whole 300 s deadline on a loaded machine, plus one long-poll
def test_a_live_worker_keeps_its_long_chunk_past_the_visibility_timeout(test_redis, settings_env, tmp_path):
    """A chunk running for several visibility timeouts is not handed to the idle second worker: the
    running worker's heartbeat keeps refreshing it (without the heartbeat it is redelivered after 3 s)."""
    crash = test_redis.client(test_redis.crash_db)
    crash.flushdb()
    n = 12
    env = child_env(test_redis.crash_url, visibility_timeout="3", torch_threads="1")
    with _api(test_redis, settings_env, chunk_size=str(n)) as api:
        with child(_worker("busy"), env, tmp_path / "busy.log"), child(_worker("idle"), env, tmp_path / "idle.log"):
            started = time.monotonic()
            resp = api.post(
                "/v1/scores",
                json=request(cells(n, seed=31), ["jacob_cov", "snip", "grad_norm"], seed=131, batch_size=64),
            )
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job_id"]
            last: dict = {}

            def finished() -> bool:  # long-polls of up to 60 s each
                last.update(api.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json())
                return last["status"] == "done"

            # a loaded machine (the rest of the suite beside it) is slow
            wait_until(finished, 300, interval=0, message=lambda: f"the job to finish (last: {last.get('progress')})")
            job = last
            elapsed = time.monotonic() - started
    assert job["status"] == "done" and all(r["error"] is None for r in job["results"]), job
    assert elapsed > 2 * 3, f"the chunk ran {elapsed:.1f} s: too short to show anything"
    assert crash.get(f"{store.job_key(job_id)}:attempts:0") == "1", "the chunk was delivered twice"
    assert crash.hlen("unacked") == 0
    crash.flushdb()


@pytest.mark.slow
def test_sigkill_of_a_whole_worker_mid_chunk_the_live_worker_finishes_the_job(test_redis, settings_env, tmp_path):
    """The issue's criterion, on default settings (visibility timeout 30 s, prefork pool): SIGKILL of a
    worker's main and pool processes mid-chunk, with another worker live: the job completes within
    90 s with every result present exactly once."""
    crash = test_redis.client(test_redis.crash_db)
    crash.flushdb()
    n = 6
    archs = cells(n, seed=41)
    env = child_env(test_redis.crash_url, torch_threads="1")
    env.pop("ARCHSCORE_VISIBILITY_TIMEOUT", None)
    with _api(test_redis, settings_env, chunk_size="1") as api:
        with (
            child(_worker("victim"), env, tmp_path / "victim.log") as victim,
            child(_worker("survivor"), env, tmp_path / "survivor.log"),
        ):
            resp = api.post(
                "/v1/scores", json=request(archs, ["jacob_cov", "snip", "grad_norm", "fisher"], seed=141, batch_size=64)
            )
            job_id = resp.json()["job_id"]

            def frozen_mid_chunk() -> tuple[list[int], int] | None:
                """Freeze the victim and look: is it mid-chunk? (no race with its next step)"""
                assert victim.poll() is None, (tmp_path / "victim.log").read_text()
                group = [victim.pid, *child_pids(victim.pid)]
                while True:  # the main process may have forked a pool process after the listing: freeze it too
                    _stop_all(group, signal.SIGSTOP)
                    wait_until(lambda: all(stopped(p) for p in group), 5, interval=0.001, message="the victim frozen")
                    more = [p for p in child_pids(victim.pid) if p not in group]
                    if not more:
                        break
                    group += more
                done = {int(i) for i in crash.smembers(store.job_done_key(job_id))}
                lost = _running_on(crash, job_id, n, "victim", done)
                if lost is not None:
                    time.sleep(0.5)  # a command the victim sent just before it froze may still land: look again
                    if lost not in {int(i) for i in crash.smembers(store.job_done_key(job_id))}:
                        return group, lost
                _stop_all(group, signal.SIGCONT)
                return None

            group, lost = wait_until(frozen_mid_chunk, 90, interval=0.05, message="the victim to run a chunk")
            _stop_all(group, signal.SIGKILL)  # the worker's main and pool processes
            killed = time.monotonic()
            victim.wait(10)
            job = api.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()
            if job["status"] != "done":
                job = api.get(f"/v1/jobs/{job_id}", params={"wait": 40}).json()
            took = time.monotonic() - killed
    assert job["status"] == "done", (job["progress"], (tmp_path / "survivor.log").read_text()[-3000:])
    assert took < 90
    assert [r["arch"] for r in job["results"]] == archs  # each architecture once, in order
    for result in job["results"]:
        assert result["error"] is None
        assert all(isinstance(v, float) for v in result["scores"].values()), result
    attempts = [int(crash.get(f"{store.job_key(job_id)}:attempts:{i}") or 0) for i in range(n)]
    assert attempts[lost] == 2, attempts  # the lost chunk ran again ...
    assert [a for i, a in enumerate(attempts) if i != lost] == [1] * (n - 1), attempts  # ... and only it
    crash.flushdb()


def _up(tmp_path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
    env.update(ARCHSCORE_DATA_DIR=str(tmp_path / "data"), ARCHSCORE_TORCH_THREADS="1", PYTHONUNBUFFERED="1")
    command = [*UP, "--port", str(port)]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=open(tmp_path / "up.log", "wb"), stderr=subprocess.STDOUT
    )


def _part(up: subprocess.Popen, marker: str) -> int:
    (pid,) = [p for p in child_pids(up.pid) if marker in cmdline(p)]
    return pid


def _readyz_if(base: str, condition) -> dict | None:
    answer = readyz(base)
    return answer if condition(answer) else None


@pytest.mark.timeout(480)  # its waits add up to ~390 s at worst
@pytest.mark.slow
def test_up_restarts_a_dead_worker_and_redis_and_stops_redis_last(tmp_path):
    port = runner.free_port()
    base = f"http://127.0.0.1:{port}"
    up = _up(tmp_path, port)
    log = lambda: (tmp_path / "up.log").read_text()
    body = {"archs": [[0, 1, 2, 3, 4, 0]], "estimators": ["params", "relu"]}
    try:
        wait_until(lambda: up.poll() is None and readyz(base)["ready"], 90, message=lambda: "ready\n" + log())
        first = httpx.post(f"{base}/v1/scores", params={"wait": 30}, timeout=40, json=body).json()
        assert first["status"] == "done", first

        scoring = _part(up, "--queues celery")
        _stop_all([scoring, *child_pids(scoring)], signal.SIGKILL)
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # the API stays up
        gone = wait_until(
            lambda: _readyz_if(base, lambda r: not r["ready"]), 15, interval=0.1, message="readyz notices"
        )
        assert gone["missing"] == ["scoring worker (queue celery)"], gone
        wait_until(lambda: readyz(base)["ready"], 60, message=lambda: "the scoring worker restarted\n" + log())
        assert _part(up, "--queues celery") != scoring
        assert "scoring worker exited with status -9; restarting" in log()

        server = _part(up, "redis-server")
        time.sleep(1.5)  # the append-only file is synced every second
        os.kill(server, signal.SIGKILL)
        outage = wait_until(
            lambda: _readyz_if(base, lambda r: "redis" in r["missing"]),
            10,
            interval=0.05,
            message="readyz notices Redis is gone",
        )
        assert outage["ready"] is False and httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        wait_until(
            lambda: httpx.get(f"{base}/v1/jobs", timeout=5).status_code == 200,
            60,
            message=lambda: "Redis restarted\n" + log(),
        )
        # once a route reads Redis again, readyz never reports it missing (its broker connection reconnects)
        assert readyz(base)["redis"] is True and readyz(base)["redis_memory"]["bounded"] is True
        wait_until(lambda: readyz(base)["ready"], 60, message=lambda: "the workers are back\n" + log())
        again = httpx.post(f"{base}/v1/scores", params={"wait": 30}, timeout=40, json=body).json()
        assert again["cached"] == 1 and again["results"][0]["scores"] == first["results"][0]["scores"]

        parts = {
            name: _part(up, marker)
            for name, marker in [
                ("redis", "redis-server"),
                ("scoring", "--queues celery"),
                ("training", "--queues training"),
                ("api", "uvicorn"),
            ]
        }
        up.send_signal(signal.SIGINT)
        ended: dict[str, float] = {}

        def all_ended() -> bool:
            for name, pid in parts.items():
                if name not in ended and not alive(pid):
                    ended[name] = time.monotonic()
            return len(ended) == len(parts)

        wait_until(all_ended, 60, interval=0.02, message=lambda: f"every part to stop (stopped: {ended})")
        assert up.wait(30) == 0, log()
        assert set(ended) == set(parts), ended
        assert ended["api"] <= ended["scoring"] <= ended["redis"] and ended["training"] <= ended["redis"], ended
        assert "Couldn't ack" not in log()
    finally:
        if up.poll() is None:
            up.kill()
        for pid in child_pids(up.pid):
            os.kill(pid, signal.SIGKILL)


def test_redis_outage_is_503_with_retry_after_from_a_real_api_process_and_it_recovers(tmp_path):
    port, api_port = runner.free_port(), runner.free_port()
    data = tmp_path / "redis"
    server = runner.start_redis(data, port)
    env = child_env(f"redis://127.0.0.1:{port}/0")
    base = f"http://127.0.0.1:{api_port}"
    score = {"archs": [[0, 1, 2, 3, 4, 0]], "estimators": ["params"]}
    try:
        with child(runner.api_command("127.0.0.1", api_port), env, tmp_path / "api.log"):
            wait_until(lambda: status_of(f"{base}/healthz") == 200, 30, message="the API answers")
            assert httpx.post(f"{base}/v1/scores", json=score, timeout=10).status_code == 200
            runner.stop([server])
            for method, path, kwargs in [
                ("POST", "/v1/scores", {"json": score}),
                ("GET", "/v1/rankings/nb201", {}),
                ("GET", f"/v1/jobs/{'0' * 32}", {}),
            ]:
                resp = httpx.request(method, f"{base}{path}", timeout=10, **kwargs)
                assert resp.status_code == 503, (path, resp.text)
                assert resp.headers["Retry-After"] == "2"
                assert set(resp.json()) == {"error"} and resp.json()["error"]["details"][0]["field"] == "redis"
            assert status_of(f"{base}/healthz") == 200
            server = runner.start_redis(data, port)
            restarted = time.monotonic()
            wait_until(
                lambda: httpx.post(f"{base}/v1/scores", json=score, timeout=10).status_code == 200,
                10,
                interval=0.1,
                message="requests succeed again",
            )
            assert time.monotonic() - restarted < 5
    finally:
        runner.stop([server])


@pytest.mark.slow
def test_a_supervisor_killed_hard_takes_its_children_with_it_and_holds_its_data_folder(tmp_path):
    """SIGKILL of `archscore up` (a container runtime after its stop timeout, the OOM killer) leaves no
    Redis, worker or API behind; while it lives, a second `up` on the same data folder is refused."""
    port = runner.free_port()
    base = f"http://127.0.0.1:{port}"
    up = _up(tmp_path, port)
    try:
        wait_until(
            lambda: up.poll() is None and readyz(base)["ready"],
            90,
            message=lambda: "ready\n" + (tmp_path / "up.log").read_text(),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
        env["ARCHSCORE_DATA_DIR"] = str(tmp_path / "data")  # the first one's data folder
        refused = subprocess.run(
            [
                sys.executable,
                "-c",
                "from archscore.service.cli import main; main()",
                "up",
                "--port",
                str(runner.free_port()),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2 and f"(pid {up.pid})" in refused.stderr, refused.stderr
        parts = descendants(up.pid)
        assert len(parts) >= 4  # redis-server, two workers (and their pool processes), the API
        up.kill()
        up.wait()
        wait_until(lambda: not [p for p in parts if alive(p)], 10, message="every child gone within 10 s")
    finally:
        if up.poll() is None:
            up.kill()


def test_up_refuses_to_start_a_second_redis_on_a_folder_whose_server_was_left_running(tmp_path):
    data = tmp_path / "data"
    port = runner.free_port()
    (data / "redis").mkdir(parents=True)
    (data / "redis" / "port").write_text(str(port))
    leftover = runner.start_redis(data / "redis", port)  # as if an earlier run's server had survived it
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
        env["ARCHSCORE_DATA_DIR"] = str(data)
        refused = subprocess.run(
            [
                sys.executable,
                "-c",
                "from archscore.service.cli import main; main()",
                "up",
                "--port",
                str(runner.free_port()),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"pid {leftover.pid}" in refused.stderr and "still running" in refused.stderr
        assert leftover.poll() is None  # left alone: the operator decides
    finally:
        runner.stop_process(leftover, 10)
