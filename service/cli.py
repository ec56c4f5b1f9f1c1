"""The full ``archscore`` command: the library commands plus ``up``, ``api`` and ``worker``.

The library commands work with the core install; ``up``, ``api`` and ``worker`` need the ``service``
extra (FastAPI, Celery, Redis) and say so when it is missing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from archscore.contract.tasks import SCORING_QUEUE, TRAINING_QUEUE
from archscore.estimators.cli import app
from archscore.estimators.cli.console import fail, out
from archscore.estimators.cli.predictor import app as predictor_app
from archscore.estimators.cli.study import study
from archscore.estimators.cli.supernet import app as supernet_app
from archscore.service.supervisor import (
    Child,
    DataFolderInUse,
    Supervisor,
    lock_data_folder,
    popen_in_own_session,
)


def _service():
    """(runner module, settings) of the service; exit 2 with the install command when the service
    extra is not installed."""
    try:
        from archscore.contract.settings import get_settings
        from archscore.service import runner
    except ImportError as exc:
        fail(f"this command needs the service extra ({exc.name} is missing): pip install 'archscore[service]'")
        raise  # unreachable: fail exits
    return runner, get_settings()


app.add_typer(supernet_app, name="supernet")
app.add_typer(predictor_app, name="predictor")
app.command()(study)


@app.command()
def up(
    port: Annotated[int, typer.Option("--port", help="API port")] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    workers: Annotated[int, typer.Option("--workers", help="worker processes")] = 1,
) -> None:
    """Run everything: Redis (embedded unless ARCHSCORE_REDIS_URL is set), a scoring worker, a supernet
    training worker and the API. A part that dies is restarted; Ctrl-C stops the API, then the workers
    (each may finish its chunk), then Redis."""
    runner, settings = _service()
    try:
        lock = lock_data_folder(Path(settings.data_dir))  # noqa: F841 - held until this process ends
    except DataFolderInUse as exc:
        fail(str(exc))
    # SIGTERM (kill, a service manager, a container stop) stops the children like Ctrl-C does; so does
    # SIGINT when a shell started this in the background with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    children: list[Child] = []
    if settings.redis_url:
        redis_url = settings.redis_url
    else:
        data_dir = Path(settings.data_dir) / "redis"
        try:
            redis_port = runner.embedded_redis_port(data_dir)
        except RuntimeError as exc:
            fail(str(exc))
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        children.append(
            Child("redis-server", lambda: runner.start_redis(data_dir, redis_port, settings.redis_maxmemory))
        )
    env = runner.child_env(redis_url)
    url = f"http://{host}:{port}"

    def api() -> subprocess.Popen:
        proc = popen_in_own_session(runner.api_command(host, port), env)
        _wait_http(f"{url}/healthz", proc)
        return proc

    children += [
        Child(
            "scoring worker",
            lambda: popen_in_own_session(runner.worker_command(workers), env, signal.SIGKILL),
            WORKER_GRACE,
        ),
        Child(
            "training worker",
            lambda: popen_in_own_session(runner.worker_command(1, queues=TRAINING_QUEUE), env, signal.SIGKILL),
            WORKER_GRACE,
        ),
        Child("API", api),
    ]
    supervisor = Supervisor(children, report=lambda line: out.print(line, markup=False, highlight=False))
    try:
        if settings.redis_url:
            runner.wait_for_redis(redis_url)
            out.print(f"Redis: {redis_url}")
        else:
            out.print(f"Redis: embedded redis-server on {redis_url}, append-only file in {data_dir}")
        supervisor.start_all()
        out.print(f"archscore is up: {url}  (API docs: {url}/docs)")
        out.print("Try:", style="bold")
        out.print(
            f"curl --fail-with-body -X POST '{url}/v1/scores?wait=60' -H 'Content-Type: application/json' "
            '-d \'{"space": "nb201", "archs": [[0,1,2,3,4,0], 1234], '
            '"estimators": ["synflow", "params", "jacob_cov"]}\'',
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        supervisor.run()
    except KeyboardInterrupt:
        out.print("stopping: the API, the workers, then Redis")
    except RuntimeError as exc:
        fail(str(exc))
    finally:
        supervisor.stop_all()


WORKER_GRACE = 20.0  # seconds a stopping worker may finish its chunk; after that the broker redelivers it


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
    runner, _ = _service()
    os.execv(runner.api_command(host, port)[0], runner.api_command(host, port))


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 1,
    queues: Annotated[
        str, typer.Option("--queues", "-Q", help="celery (scoring), training (supernets) or both, comma-separated")
    ] = SCORING_QUEUE,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="node name (NAME@host); default: unique per "
            "process. Give one where the host is the worker's own, e.g. "
            "a container, so a health check can address it",
        ),
    ] = None,
) -> None:
    """Run a Celery worker only (uses ARCHSCORE_REDIS_URL)."""
    runner, _ = _service()
    names = [q.strip() for q in queues.split(",") if q.strip()]
    known = (SCORING_QUEUE, TRAINING_QUEUE)
    if not names or any(q not in known for q in names):
        fail(f"--queues: use {' or '.join(known)} (comma-separated), got {queues!r}")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        fail(f"--name: use 1-64 letters, digits, '_', '.' or '-', got {name!r}")
    command = runner.worker_command(concurrency, "info", ",".join(names), name)
    os.execv(command[0], command)


def main() -> None:
    app()
