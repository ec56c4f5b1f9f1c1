"""The API's answers: its one error shape, status probes, and waiting for an address to answer."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from helpers.waiting import wait_until


def error_fields(response, status: int) -> dict[str, str]:
    """Assert the one error shape and return {field: reason}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"status", "message", "details"}
    assert err["status"] == status and isinstance(err["message"], str) and err["message"]
    for d in err["details"]:
        assert set(d) == {"field", "reason"} and d["reason"]
    return {d["field"]: d["reason"] for d in err["details"]}


def status_of(url: str, timeout: float = 5) -> int:
    """The status of GET ``url``; 0 when nothing answers."""
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.TransportError:
        return 0


def readyz(base: str) -> dict:
    """/readyz's answer; not ready, saying why, when nothing answers."""
    try:
        resp = httpx.get(f"{base}/readyz", timeout=5)
    except httpx.TransportError as exc:
        return {"ready": False, "missing": [f"no answer: {exc}"]}
    return resp.json()


def wait_answering(
    url: str,
    timeout: float,
    procs: dict[str, subprocess.Popen] | None = None,
    logs: dict[str, Path] | None = None,
    ok: Callable[[httpx.Response], bool] = lambda resp: resp.status_code == 200,
    interval: float = 0.2,
) -> httpx.Response:
    """GET ``url`` until ``ok(response)``; the response. Fails at once, with the logs, when one of ``procs``
    (name -> process) exits; on the deadline the last answer and the logs' tails say why."""
    from helpers.stack import tail

    procs, logs = procs or {}, logs or {}
    last: list[str] = ["no answer"]

    def answered():
        for name, proc in procs.items():
            log = tail(logs[name]) if name in logs else ""
            assert proc.poll() is None, f"the {name} exited with status {proc.returncode}:\n{log}"
        try:
            resp = httpx.get(url, timeout=5)
        except httpx.TransportError as exc:
            last[0] = f"no answer: {exc!r}"
            return None
        last[0] = f"{resp.status_code} {resp.text[:500]}"
        return resp if ok(resp) else None

    return wait_until(
        answered,
        timeout,
        interval=interval,
        message=lambda: (
            f"{url} to answer (last: {last[0]})\n"
            + "\n".join(f"--- {name} log:\n{tail(path)}" for name, path in logs.items())
        ),
    )
