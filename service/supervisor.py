"""Supervision of the processes `archscore up` runs: a child that dies is started again (with
back-off), and stopping goes in dependency order -- the API, then the workers (given time to finish
their chunk; one killed after the grace period has its chunk redelivered by the broker), Redis last.

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches only `archscore up`,
which then stops the children in that order (with one process group, Redis and the workers got the
signal together and the workers could not acknowledge their last chunk).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

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
                except Exception as exc:  # noqa: BLE001 - a failed start is retried with more back-off
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


def popen_in_own_session(command: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=env, start_new_session=True, **kwargs)
    proc.own_group = True  # its process group id is its pid; stop_process cleans the group up
    return proc


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
