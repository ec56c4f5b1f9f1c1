"""The synchronous client."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from archscore_client.errors import ArchscoreError, JobTimeout
from archscore_client.models import ArchResult, Job, Study
from archscore_client.routes import SERVER_DEFAULT, Call, Routes

DEFAULT_URL = "http://127.0.0.1:8000"
RETRIED = (429, 503)  # answers that say "later": retried after their Retry-After


def retry_delay(response: httpx.Response, attempt: int, retries: int, most: float) -> float | None:
    """Seconds to wait before retrying ``response``, or None when it is final."""
    if response.status_code not in RETRIED or attempt >= retries:
        return None
    try:
        return min(max(0.0, float(response.headers.get("retry-after", 1))), most)
    except ValueError:
        return min(1.0, most)


def finish(call: Call, response: httpx.Response) -> Any:
    if response.status_code >= 400 and response.status_code not in call.answers:
        raise ArchscoreError.from_response(response)
    try:
        return call.parse(response)
    except (ValueError, KeyError) as exc:
        raise ArchscoreError(response.status_code, f"unexpected answer: {response.text[:200]!r}") from exc


class Client(Routes):
    """Synchronous client of every route. ``timeout`` bounds a request beyond its long-poll; a 503 or 429
    is retried up to ``retries`` times after its Retry-After (at most ``max_retry_wait`` seconds)."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 30.0,
                 poll_seconds: float = 30.0, retries: int = 3, max_retry_wait: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout, self.poll_seconds = float(timeout), float(poll_seconds)
        self.retries, self.max_retry_wait = retries, max_retry_wait
        headers = {"Accept": "application/json", "User-Agent": "archscore-client/0.1"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, call: Call) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(call.method, call.path, params=call.params, json=call.json,
                                              content=call.content, headers=call.headers,
                                              timeout=self.timeout + call.wait)
            except httpx.TimeoutException as exc:
                raise ArchscoreError(None, f"{call.method} {self.base_url}{call.path} timed out: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise ArchscoreError(None, f"cannot reach {self.base_url}: {exc}") from exc
            delay = retry_delay(response, attempt, self.retries, self.max_retry_wait)
            if delay is None:
                return finish(call, response)
            time.sleep(delay)
        raise AssertionError("unreachable")

    # -- following jobs -----------------------------------------------------------------------------
    def wait_for(self, job: Job, wait: float) -> Job:
        """Long-poll ``job`` until it has ended or ``wait`` seconds passed (then JobTimeout)."""
        started = time.monotonic()
        while not job.done:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise JobTimeout(job, time.monotonic() - started)
            job = self.job(job.job_id, wait=min(remaining, self.poll_seconds))
        if job.status == "failed":
            raise ArchscoreError(None, f"{job.kind} {job.raw.get('name')!r} failed: {job.raw.get('error')}", body=job)
        return job

    def score(self, archs: Iterable[Any], estimators: Iterable[str], space: str | None = None,
              protocol: Mapping[str, Any] | None = None, truth: Any = SERVER_DEFAULT, wait: float = 300.0) -> Job:
        """Score and long-poll until done; ``wait`` is the overall deadline in seconds (0: return the
        job as submitted)."""
        job = self.submit(archs, estimators, space, protocol, truth)
        return self.wait_for(job, wait) if wait > 0 else job

    def iter_scores(self, archs: Iterable[Any], estimators: Iterable[str], chunk_size: int = 100,
                    in_flight: int = 4, wait: float = 3600.0, **request: Any) -> Iterator[ArchResult]:
        """The results of a large request as its chunks finish, in request order: ``archs`` go in requests
        of ``chunk_size``, ``in_flight`` of them submitted ahead; each result's ``index`` is its position in
        ``archs``. ``request``: space, protocol, truth as for ``score``."""
        archs = list(archs)
        starts = iter(range(0, len(archs), chunk_size))
        pending: deque[tuple[int, Job]] = deque()
        deadline = time.monotonic() + wait

        def submit_next() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append((start, self.submit(archs[start:start + chunk_size], estimators, **request)))

        for _ in range(max(1, in_flight)):
            submit_next()
        while pending:
            start, job = pending.popleft()
            job = self.wait_for(job, max(0.0, deadline - time.monotonic()))
            submit_next()
            for result in job.results or []:
                yield dataclasses.replace(result, index=start + result.index)

    def run_study(self, study: str, archs: Iterable[Any], estimators: Iterable[str], wait: float = 600.0,
                  **request: Any) -> Study:
        """Start a study and long-poll until its result is computed (JobTimeout-like ArchscoreError after
        ``wait``)."""
        started = time.monotonic()
        record = self.start_study(study, archs, estimators, **request)
        while not record.done:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise ArchscoreError(None, f"study {record.study_id} not done after {wait:.0f} s", body=record)
            record = self.study(record.study_id, wait=min(remaining, self.poll_seconds))
        return record

    def train_supernet(self, name: str, wait: float = 0.0, **options: Any) -> Job:
        """Start training checkpoint ``name``; with ``wait``, follow it until done (a failure raises)."""
        job = self.start_training(name, **options)
        return self.wait_for(job, wait) if wait > 0 else job

    def average_supernets(self, name: str, checkpoints: Iterable[str] = (), snapshots_of: str | None = None,
                          wait: float = 0.0) -> Job:
        job = self.start_average(name, checkpoints, snapshots_of)
        return self.wait_for(job, wait) if wait > 0 else job
