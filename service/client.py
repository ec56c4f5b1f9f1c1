"""A small synchronous client for the archscore REST API (httpx only; never imports torch).

    from archscore.service.client import ArchscoreClient, ArchscoreError

    with ArchscoreClient("http://127.0.0.1:8000") as client:
        job = client.score([[0, 1, 2, 3, 4, 0], 1234], ["synflow", "params"], protocol={"batch_size": 64})
        for row in job["results"]:
            print(row["arch"], row["scores"], row["ground_truth"])
        print(client.rankings("nb201", protocol_hash=job["protocol_hash"]))

        client.train_supernet("uniform-30", epochs=30, wait=3600)          # one-shot estimators
        job = client.score(archs, ["oneshot_acc"], protocol={"oneshot": {"supernet": "uniform-30"}})

Every HTTP error (4xx/5xx) raises :class:`ArchscoreError` with the server's ``status``, ``message`` and
``details`` (``[{"field", "reason"}]``); an unreachable server raises it with ``status=None``; a job that is
not done by the deadline raises :class:`JobTimeout` (a subclass) carrying the last job body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["ArchscoreClient", "ArchscoreError", "JobTimeout"]

SERVER_DEFAULT: Any = object()  # leave the field out: the server's default (space: nb201; truth: its first column)

DEFAULT_URL = "http://127.0.0.1:8000"


class ArchscoreError(Exception):
    """An error answer of the API (or no answer at all: ``status`` is None)."""

    def __init__(
        self,
        status: int | None,
        message: str,
        details: list[dict[str, str]] | None = None,
        body: Any = None,
    ):
        self.status = status
        self.message = message
        self.details = list(details or [])
        self.body = body
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"HTTP {self.status}: {self.message}" if self.status is not None else self.message
        if self.details:
            head += " (" + "; ".join(f"{d.get('field')}: {d.get('reason')}" for d in self.details) + ")"
        return head

    def reasons(self, field: str) -> list[str]:
        """The reasons given for one field, e.g. ``err.reasons("archs[0]")``."""
        return [d.get("reason", "") for d in self.details if d.get("field") == field]

    @classmethod
    def from_response(cls, response: httpx.Response) -> ArchscoreError:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "message" in error:
            details = [d for d in error.get("details") or [] if isinstance(d, dict)]
            return cls(int(error.get("status", response.status_code)), str(error["message"]), details, body)
        text = response.text.strip()[:500] or response.reason_phrase
        return cls(response.status_code, text, [], body)


class JobTimeout(ArchscoreError):
    """The job was not done by the client's deadline; ``job`` is its last state (poll on with ``job()``)."""

    def __init__(self, job: dict, waited: float):
        self.job = job
        progress = job.get("progress") or {}
        if job.get("kind") == "supernet_training":
            where = f"epoch {progress.get('epoch', 0)}/{progress.get('epochs', '?')}"
        else:
            where = f"{progress.get('done', '?')}/{progress.get('total', '?')} architectures scored"
        super().__init__(None, f"job {job.get('job_id')} not done after {waited:.0f} s ({where})", body=job)


class ArchscoreClient:
    """Synchronous client. ``timeout`` bounds each request beyond its long-poll ``wait``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        poll_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.poll_seconds = float(poll_seconds)
        headers = {"Accept": "application/json", "User-Agent": "archscore-client/0.1"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout, transport=transport)

    # -- plumbing -----------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ArchscoreClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, path: str, *, wait: float = 0.0, **kwargs) -> Any:
        try:
            response = self._http.request(method, path, timeout=self.timeout + max(0.0, wait), **kwargs)
        except httpx.TimeoutException as exc:
            raise ArchscoreError(None, f"{method} {self.base_url}{path} timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise ArchscoreError(None, f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise ArchscoreError.from_response(response)
        try:
            return response.json()
        except ValueError as exc:
            raise ArchscoreError(response.status_code, f"not a JSON answer: {response.text[:200]!r}") from exc

    # -- API ----------------------------------------------------------------------------------------
    def score(
        self,
        archs: Iterable[Any],
        estimators: Iterable[str],
        space: str | None = None,
        protocol: Mapping[str, Any] | None = None,
        truth: str | None | object = SERVER_DEFAULT,
        wait: float = 300.0,
    ) -> dict:
        """Submit a score request and long-poll the job until it is done; returns the job body
        (``results``, ``rankings``, ``protocol_hash`` ...). ``wait`` is the overall deadline in seconds
        (0: return the job as submitted)."""
        body: dict[str, Any] = {"archs": list(archs), "estimators": list(estimators)}
        if space is not None:
            body["space"] = space
        if truth is not SERVER_DEFAULT:
            body["truth"] = truth
        if protocol is not None:
            body["protocol"] = dict(protocol)
        started = time.monotonic()
        job = self._request("POST", "/v1/scores", json=body)
        while job["status"] != "done" and wait > 0:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise JobTimeout(job, time.monotonic() - started)
            job = self.job(job["job_id"], wait=min(remaining, self.poll_seconds))
        return job

    def train_supernet(self, name: str, wait: float = 0.0, **options: Any) -> dict:
        """Start training a supernet checkpoint ``name`` (options as in POST /v1/supernets: sampler,
        epochs, resume ...). With ``wait`` (seconds), long-poll until the job is done or failed;
        a failed training raises :class:`ArchscoreError` with the worker's message."""
        job = self._request("POST", "/v1/supernets", json={"name": name, **options})
        return self._follow_supernet_job(job, wait)

    def average_supernets(
        self, name: str, checkpoints: Iterable[str] = (), snapshots_of: str | None = None, wait: float = 0.0
    ) -> dict:
        """Average checkpoints (by name) and/or the last-epoch snapshots of one into checkpoint ``name``."""
        body: dict[str, Any] = {"name": name, "checkpoints": list(checkpoints)}
        if snapshots_of is not None:
            body["snapshots_of"] = snapshots_of
        return self._follow_supernet_job(self._request("POST", "/v1/supernets/average", json=body), wait)

    def _follow_supernet_job(self, job: dict, wait: float) -> dict:
        started = time.monotonic()
        while job["status"] in ("queued", "running") and wait > 0:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise JobTimeout(job, time.monotonic() - started)
            job = self.job(job["job_id"], wait=min(remaining, self.poll_seconds))
        if job["status"] == "failed":
            raise ArchscoreError(None, f"{job['kind']} {job['name']!r} failed: {job.get('error')}", body=job)
        return job

    def supernets(self) -> list[dict]:
        """Supernet checkpoints available for one-shot scoring, newest first."""
        return self._request("GET", "/v1/supernets")

    def job(self, job_id: str, wait: float = 0.0) -> dict:
        """A job's status, progress and (when done) results; ``wait`` long-polls up to that many seconds."""
        params = {"wait": wait} if wait > 0 else None
        return self._request("GET", f"/v1/jobs/{quote(job_id, safe='')}", params=params, wait=wait)

    def rankings(self, space: str, truth: str | None = None, protocol_hash: str | None = None) -> dict:
        """Ranking-quality statistics of every estimator over everything scored so far."""
        params = {k: v for k, v in (("truth", truth), ("protocol_hash", protocol_hash)) if v is not None}
        return self._request("GET", f"/v1/rankings/{quote(space, safe='')}", params=params or None)

    def estimators(self) -> list[dict]:
        return self._request("GET", "/v1/estimators")

    def spaces(self) -> list[dict]:
        return self._request("GET", "/v1/spaces")

    def canonical(self, space: str, arch: Any) -> dict:
        """Validate one encoding (string form, NASLib list, index ...); its string form and canonical key."""
        text = arch if isinstance(arch, str) else json.dumps(arch)
        return self._request("GET", f"/v1/spaces/{quote(space, safe='')}/canonical", params={"arch": text})

    def upload_truth(
        self, space: str, name: str, text: str | Mapping[str, float] | list, column: str | None = None
    ) -> dict:
        """Upload (replace) a ground-truth table: CSV text (``arch,value``), JSON text / a mapping, or NDS
        records (``column`` min_test_top1 or test_ep_top1). The answer counts the rows kept and the
        entries of another space left out (``skipped``)."""
        content = text if isinstance(text, str) else json.dumps(text)
        return self._request(
            "PUT",
            f"/v1/truth/{quote(space, safe='')}/{quote(name, safe='')}",
            params={"column": column} if column else None,
            content=content.encode("utf-8"),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
