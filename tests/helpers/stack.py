"""Processes of the service as the tests start them: the API over a socket, Celery workers, `archscore up`;
their environment and logs, and what /proc says about them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# `archscore up` as the quickstart runs it (the console script may not be on PATH)
UP = [PYTHON, "-c", "from archscore.service.cli import main; main()", "up"]


def tail(path: Path, n: int = 3000) -> str:
    """The end of a log file ('' when there is none yet)."""
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def child_env(redis_url: str, **settings: str) -> dict[str, str]:
    """This process's environment on ``redis_url`` with ARCHSCORE_ ``settings``, the repository importable."""
    env = {**os.environ, "ARCHSCORE_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    env.update({f"ARCHSCORE_{k.upper()}": v for k, v in settings.items()})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@contextmanager
def child(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child process with its output in ``log``; terminated (then killed) on exit."""
    from archscore.service import runner

    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            runner.stop([proc], timeout=15.0)


@contextmanager
def api_process(redis_url: str, log_dir: Path, timeout: float = 30, **settings: str) -> Iterator[str]:
    """An API process over a real socket on ``redis_url`` with ARCHSCORE_ ``settings``; its base URL once
    /healthz answers."""
    from archscore.service import runner
    from helpers.http import wait_answering

    port = runner.free_port()
    log = log_dir / f"api-{port}.log"
    with child(runner.api_command("127.0.0.1", port), child_env(redis_url, **settings), log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_answering(f"{base}/healthz", timeout, procs={"API": proc}, logs={"API": log}, ok=lambda _: True)
        yield base


def child_pids(pid: int) -> list[int]:
    """Live (not zombie) direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    found, todo = [], [pid]
    while todo:
        for c in child_pids(todo.pop()):
            found.append(c)
            todo.append(c)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stopped(pid: int) -> bool:
    """Frozen by SIGSTOP (or gone: nothing more will run there)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except OSError:
        return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- the in-thread Celery worker of tests/conftest.py (it runs in this process, so signals fire here) ---

_task_count = 0
_task_lock = threading.Lock()


def count_task(**_) -> None:
    """task_prerun receiver: one more task started."""
    global _task_count
    with _task_lock:
        _task_count += 1


def tasks_run() -> int:
    """Tasks the in-thread worker has started so far."""
    return _task_count
