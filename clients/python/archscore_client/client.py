"""The synchronous client, and what it shares with the asynchronous one (retries, the wait bound)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from archscore_client.errors import ArchscoreError, JobTimeout
from archscore_client.models import ArchResult, Job, Study
from archscore_client.routes import SERVER_DEFAULT, Call, Routes

DEFAULT_URL = "http://127.0.0.1:8000"
RETRIED = (429, 503)  # answers that say "later" (Redis unavailable, rate limit): retried after their Retry-After
# The server's answer to a wait above its bound: "must be at most 60 seconds, this server's bound ..."
_BOUND = re.compile(r"at most ([0-9]+(?:\.[0-9]+)?) seconds")

RetryHook = Callable[[httpx.Response, float], Any]


def retry_delay(response: httpx.Response, attempt: int, retries: int, most: float) -> float | None:
    """Seconds to wait before retrying ``response``, or None when it is final."""
    if response.status_code not in RETRIED or attempt >= retries:
        return None
    try:
        return min(max(0.0, float(response.headers.get("retry-after", 1))), most)
    except ValueError:  # an HTTP date or garbage: one second
        return min(1.0, most)


def wait_bound(error: ArchscoreError) -> float | None:
    """The server's bound on ``wait`` when ``error`` is its 422 for a wait above it, else None."""
    if error.status != 422:
        return None
    for reason in error.reasons("wait"):
        found = _BOUND.search(reason)
        if found:
            return float(found.group(1))
    return None


def finish(call: Call, response: httpx.Response) -> Any:
    if response.status_code >= 400 and response.status_code not in call.answers:
        raise ArchscoreError.from_response(response)
    try:
        return call.parse(response)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchscoreError(response.status_code, f"unexpected answer: {response.text[:200]!r}") from exc


def failed(job: Job) -> ArchscoreError:
    return ArchscoreError(None, f"{job.kind} {job.name!r} failed: {job.error}", body=job)


class _Options:
    """Settings shared by both clients."""

    def _setup(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        poll_seconds: float,
        retries: int,
        max_retry_wait: float,
        on_retry: RetryHook | None,
    ) -> dict[str, str]:
        self.base_url = base_url.rstrip("/")
        self.timeout, self.poll_seconds = float(timeout), float(poll_seconds)
        self.retries, self.max_retry_wait = max(0, int(retries)), float(max_retry_wait)
        self.on_retry = on_retry
        headers = {"Accept": "application/json", "User-Agent": "archscore-client/0.1"}
        if api_key:
            headers["X-API-Key"] = api_key
        return headers

    def _send_error(self, call: Call, exc: httpx.HTTPError) -> ArchscoreError:
        if isinstance(exc, httpx.TimeoutException):
            return ArchscoreError(None, f"{call.method} {self.base_url}{call.path} timed out: {exc!r}")
        return ArchscoreError(None, f"cannot reach {self.base_url}: {exc}")

    def _lower_poll(self, error: ArchscoreError, asked: float) -> bool:
        """After a 422 for a long-poll above the server's bound: poll within the bound from now on."""
        bound = wait_bound(error)
        if bound is None or bound >= asked:
            return False
        self.poll_seconds = bound
        return True


class Client(_Options, Routes):
    """Synchronous client of every route.

    ``timeout``: seconds a request may take beyond its long-poll. ``poll_seconds``: the longest single
    long-poll (lowered to the server's bound when the server says it is lower). A 503 or 429 is retried up
    to ``retries`` times after its ``Retry-After`` (at most ``max_retry_wait`` seconds each);
    ``on_retry(response, delay)`` is called before each retry."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        poll_seconds: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        on_retry: RetryHook | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        headers = self._setup(base_url, api_key, timeout, poll_seconds, retries, max_retry_wait, on_retry)
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
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.json,
                    content=call.content,
                    headers=call.headers,
                    timeout=self.timeout + call.wait,
                )
            except httpx.HTTPError as exc:
                raise self._send_error(call, exc) from exc
            delay = (
                None
                if response.status_code in call.answers
                else retry_delay(response, attempt, self.retries, self.max_retry_wait)
            )
            if delay is None:
                return finish(call, response)
            if self.on_retry is not None:
                self.on_retry(response, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    # -- following jobs -----------------------------------------------------------------------------
    def _poll(self, route: Callable[..., Any], ident: str, remaining: float) -> Any:
        asked = min(remaining, self.poll_seconds)
        try:
            return route(ident, wait=asked)
        except ArchscoreError as error:
            if not self._lower_poll(error, asked):
                raise
            return route(ident, wait=min(remaining, self.poll_seconds))

    def wait_for(self, job: Job, wait: float) -> Job:
        """Long-poll ``job`` until it has ended (a failed supernet job raises ArchscoreError), or raise
        JobTimeout after ``wait`` seconds."""
        started = time.monotonic()
        while not job.done:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise JobTimeout(job, time.monotonic() - started)
            job = self._poll(self.job, job.job_id, remaining)
        if job.status == "failed":
            raise failed(job)
        return job

    def score(
        self,
        archs: Iterable[Any],
        estimators: Iterable[str],
        space: str | None = None,
        protocol: Mapping[str, Any] | None = None,
        truth: Any = SERVER_DEFAULT,
        wait: float = 300.0,
    ) -> Job:
        """Score and long-poll until done; ``wait`` is the overall deadline in seconds, any length (the
        client polls within the server's bound as often as needed); 0 returns the job as submitted."""
        job = self.submit(archs, estimators, space, protocol, truth)
        return self.wait_for(job, wait) if wait > 0 else job

    def iter_scores(
        self,
        archs: Iterable[Any],
        estimators: Iterable[str],
        chunk_size: int = 100,
        in_flight: int = 4,
        wait: float = 3600.0,
        **request: Any,
    ) -> Iterator[ArchResult]:
        """Stream the results of a large request chunk by chunk.

        ``archs`` go to the server in requests (jobs) of ``chunk_size``, at most ``in_flight`` of them
        submitted and unfinished at a time; the results of each are yielded as soon as it and the ones
        before it have finished, so the results come in request order, and each result's ``index`` is
        its position in ``archs``. Nothing is submitted before the first ``next()``; stopping early leaves
        at most ``in_flight`` jobs running (cancel them with ``cancel`` if needed). ``wait``: the deadline
        for the whole request (JobTimeout). ``request``: space, protocol, truth as for ``score``."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        archs = list(archs)
        estimators = list(estimators)
        starts = iter(range(0, len(archs), chunk_size))
        pending: deque[tuple[int, Job]] = deque()
        deadline = time.monotonic() + wait

        def submit_next() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append((start, self.submit(archs[start : start + chunk_size], estimators, **request)))

        for _ in range(max(1, in_flight)):
            submit_next()
        while pending:
            start, job = pending.popleft()
            job = self.wait_for(job, max(0.0, deadline - time.monotonic()))
            submit_next()
            for result in job.results or []:
                yield dataclasses.replace(result, index=start + result.index)

    def run_study(
        self, study: str, archs: Iterable[Any], estimators: Iterable[str], wait: float = 600.0, **request: Any
    ) -> Study:
        """Start a study and long-poll until it has ended; ArchscoreError (``body``: its last state) after
        ``wait`` seconds. ``request``: space, protocol, truth, options as for ``start_study``."""
        started = time.monotonic()
        record = self.start_study(study, archs, estimators, **request)
        while not record.done:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise ArchscoreError(None, f"study {record.study_id} not done after {wait:.0f} s", body=record)
            record = self._poll(self.study, record.study_id, remaining)
        return record

    def train_supernet(self, name: str, wait: float = 0.0, **options: Any) -> Job:
        """Start training checkpoint ``name``; with ``wait``, follow it until done (a failure raises)."""
        job = self.start_training(name, **options)
        return self.wait_for(job, wait) if wait > 0 else job

    def average_supernets(
        self, name: str, checkpoints: Iterable[str] = (), snapshots_of: str | None = None, wait: float = 0.0
    ) -> Job:
        """Average checkpoints into ``name``; with ``wait``, follow the job until done."""
        job = self.start_average(name, checkpoints, snapshots_of)
        return self.wait_for(job, wait) if wait > 0 else job
