"""The full ``archscore`` command: the library commands plus ``up``, ``api`` and ``worker``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from estimators.cli import app, fail, out
from estimators.one_shot.cli import app as supernet_app
from service import runner
from service.settings import get_settings


app.add_typer(supernet_app, name="supernet")


@app.command()
def up(
    port: Annotated[int, typer.Option("--port", help="API port")] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    workers: Annotated[int, typer.Option("--workers", help="worker processes")] = 1,
) -> None:
    """Run everything: Redis (embedded unless ARCHSCORE_REDIS_URL is set), a scoring worker, a supernet
    training worker and the API. Ctrl-C stops all."""
    settings = get_settings()
    procs: list[subprocess.Popen] = []
    # SIGTERM (kill, a service manager, a container stop) stops the children like Ctrl-C does; so does
    # SIGINT when a shell started this in the background with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        if settings.redis_url:
            redis_url = settings.redis_url
            runner.wait_for_redis(redis_url)
            out.print(f"Redis: {redis_url}")
        else:
            data_dir = Path(settings.data_dir) / "redis"
            redis_port = runner.embedded_redis_port(data_dir)
            procs.append(runner.start_redis(data_dir, redis_port))
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            out.print(f"Redis: embedded redis-server on {redis_url}, append-only file in {data_dir}")
        env = runner.child_env(redis_url)
        procs.append(subprocess.Popen(runner.worker_command(workers), env=env))
        procs.append(subprocess.Popen(runner.worker_command(1, queues=runner.TRAINING_QUEUE), env=env))
        procs.append(subprocess.Popen(runner.api_command(host, port), env=env))
        url = f"http://{host}:{port}"
        _wait_http(f"{url}/healthz", procs[-1])
        out.print(f"archscore is up: {url}  (API docs: {url}/docs)")
        out.print("Try:", style="bold")
        out.print(
            f"curl -s -X POST '{url}/v1/scores?wait=60' -H 'Content-Type: application/json' "
            "-d '{\"space\": \"nb201\", \"archs\": [[0,1,2,3,4,0], 1234], \"estimators\": [\"synflow\", \"params\", \"jacob_cov\"]}'",
            markup=False, highlight=False, soft_wrap=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = next(p for p in procs if p.poll() is not None)
        fail(f"{' '.join(map(str, dead.args[:4]))} exited with status {dead.returncode}")
    except KeyboardInterrupt:
        out.print("stopping")
    except RuntimeError as exc:
        fail(str(exc))
    finally:
        runner.stop(procs)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not answer on {url} within {timeout} s")


@app.command()
def api(
    port: Annotated[int, typer.Option("--port")] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
) -> None:
    """Run the API only (uses ARCHSCORE_REDIS_URL)."""
    os.execv(runner.api_command(host, port)[0], runner.api_command(host, port))


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 1,
    queues: Annotated[str, typer.Option("--queues", "-Q", help="celery (scoring), training (supernets) or both, "
                                        "comma-separated")] = runner.SCORING_QUEUE,
) -> None:
    """Run a Celery worker only (uses ARCHSCORE_REDIS_URL)."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    known = (runner.SCORING_QUEUE, runner.TRAINING_QUEUE)
    if not names or any(q not in known for q in names):
        fail(f"--queues: use {' or '.join(known)} (comma-separated), got {queues!r}")
    command = runner.worker_command(concurrency, "info", ",".join(names))
    os.execv(command[0], command)


def main() -> None:
    app()
