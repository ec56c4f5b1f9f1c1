"""Supervision of the processes `archscore up` runs: a child that dies is started again (with
back-off), and stopping goes in dependency order -- the API, then the workers (given time to finish
their chunk; one killed after the grace period has its chunk redelivered by the broker), Redis last.

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches only `archscore up`,
which then stops the children in that order (with one process group, Redis and the workers got the
signal together and the workers could not acknowledge their last chunk).

A supervisor killed hard (SIGKILL from a container runtime after its stop timeout, the OOM killer) cannot
stop anything, so on Linux each child asks the kernel for a signal when its parent dies (prctl
PR_SET_PDEATHSIG): Redis and the API a SIGTERM, the workers a SIGKILL (their unacknowledged chunks go
back to the queue, as when a worker dies). A lock on the data folder (``up.lock``) keeps a second
supervisor from starting beside a live one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIN_BACKOFF, MAX_BACKOFF = 1.0, 30.0
STABLE_SECONDS = 60.0  # a child that ran this long before dying restarts after MIN_BACKOFF again


@dataclass
class Child:
    """One supervised process. ``start`` returns the running process (and may block until it answers)."""

    name: str
    start: Callable[[], subprocess.Popen]
    stop_timeout: float = 10.0
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    def launch(self) -> None:
        self.proc = self.start()
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Start children in order, restart the ones that die, stop them in reverse order."""

    def __init__(self, children: list[Child], report: Callable[[str], None] = print):
        self.children = children
        self.report = report

    def start_all(self) -> None:
        for child in self.children:
            child.launch()

    def check(self) -> None:
        """One supervision round: schedule restarts of dead children, start those that are due."""
        now = time.monotonic()
        for child in self.children:
            if child.alive:
                continue
            if child.restart_at is None:
                status = child.proc.returncode if child.proc is not None else None
                if now - child.started_at >= STABLE_SECONDS:
                    child.failures = 0
                delay = min(MAX_BACKOFF, MIN_BACKOFF * 2**child.failures)
                child.failures += 1
                child.restart_at = now + delay
                self.report(f"{child.name} exited with status {status}; restarting in {delay:g} s")
            elif now >= child.restart_at:
                try:
                    child.launch()
                    self.report(f"{child.name} restarted")
                except Exception as exc:
                    child.proc = None
                    child.restart_at = None
                    child.started_at = now
                    self.report(f"{child.name} did not start: {exc}")

    def run(self, poll: float = 0.5) -> None:
        """Supervise until interrupted (KeyboardInterrupt)."""
        while True:
            self.check()
            time.sleep(poll)

    def stop_all(self) -> None:
        """Stop children in reverse start order, each fully before the next."""
        for child in reversed(self.children):
            if child.proc is not None:
                stop_process(child.proc, child.stop_timeout)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _ending_with_parent(death_signal: int) -> Callable[[], None] | None:
    """A preexec function that makes the child receive ``death_signal`` when the process that started
    it dies; None where the kernel has no such request (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    parent = os.getpid()

    def request() -> None:
        libc.prctl(PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), death_signal)

    return request


def popen_in_own_session(
    command: list[str], env: dict[str, str] | None, death_signal: int = signal.SIGTERM, **kwargs
) -> subprocess.Popen:
    """Start ``command`` in a session of its own; it gets ``death_signal`` if this process dies."""
    proc = subprocess.Popen(
        command, env=env, start_new_session=True, preexec_fn=_ending_with_parent(death_signal), **kwargs
    )
    proc.own_group = True  # type: ignore[attr-defined]  # its process group id is its pid; stop_process cleans the group up
    return proc


class DataFolderInUse(RuntimeError):
    pass


def lock_data_folder(data_dir: Path):
    """Hold ``data_dir/up.lock`` for this process's lifetime (the kernel releases it however the process
    ends); raise DataFolderInUse naming the holder's pid when another live process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "up.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataFolderInUse(
            f"another `archscore up` (pid {holder}) runs on the data folder {data_dir}; stop it "
            "first, or give this one its own ARCHSCORE_DATA_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL the process -- and its process group
    when it leads one (a Celery worker's pool processes are in it)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    if getattr(proc, "own_group", False):
        try:  # Linux never hands out a pid that is still some group's id, so this is our group
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()
