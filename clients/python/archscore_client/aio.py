"""The asynchronous client: the same routes and helpers, awaited."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

from archscore_client.client import DEFAULT_URL, RetryHook, _Options, failed, finish, retry_delay
from archscore_client.errors import ArchscoreError, JobTimeout
from archscore_client.models import ArchResult, Job, Study
from archscore_client.routes import SERVER_DEFAULT, Call, Routes


class AsyncClient(_Options, Routes):
    """Asynchronous client of every route (``await client.spaces()``); options and helpers as ``Client``'s
    (``iter_scores`` is an async iterator)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        poll_seconds: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        on_retry: RetryHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        headers = self._setup(base_url, api_key, timeout, poll_seconds, retries, max_retry_wait, on_retry)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=self.timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _call(self, call: Call) -> Any:  # type: ignore[override]
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(
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
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _poll(self, route: Callable[..., Awaitable[Any]], ident: str, remaining: float) -> Any:
        asked = min(remaining, self.poll_seconds)
        try:
            return await route(ident, wait=asked)
        except ArchscoreError as error:
            if not self._lower_poll(error, asked):
                raise
            return await route(ident, wait=min(remaining, self.poll_seconds))

    async def wait_for(self, job: Job, wait: float) -> Job:
        started = time.monotonic()
        while not job.done:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise JobTimeout(job, time.monotonic() - started)
            job = await self._poll(self.job, job.job_id, remaining)
        if job.status == "failed":
            raise failed(job)
        return job

    async def score(
        self,
        archs: Iterable[Any],
        estimators: Iterable[str],
        space: str | None = None,
        protocol: Mapping[str, Any] | None = None,
        truth: Any = SERVER_DEFAULT,
        wait: float = 300.0,
    ) -> Job:
        job = await self.submit(archs, estimators, space, protocol, truth)
        return await self.wait_for(job, wait) if wait > 0 else job

    async def iter_scores(
        self,
        archs: Iterable[Any],
        estimators: Iterable[str],
        chunk_size: int = 100,
        in_flight: int = 4,
        wait: float = 3600.0,
        **request: Any,
    ) -> AsyncIterator[ArchResult]:
        """As ``Client.iter_scores``: results in request order as the chunks finish."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        archs = list(archs)
        estimators = list(estimators)
        starts = iter(range(0, len(archs), chunk_size))
        pending: deque[tuple[int, Job]] = deque()
        deadline = time.monotonic() + wait

        async def submit_next() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append((start, await self.submit(archs[start : start + chunk_size], estimators, **request)))

        for _ in range(max(1, in_flight)):
            await submit_next()
        while pending:
            start, job = pending.popleft()
            job = await self.wait_for(job, max(0.0, deadline - time.monotonic()))
            await submit_next()
            for result in job.results or []:
                yield dataclasses.replace(result, index=start + result.index)

    async def run_study(
        self, study: str, archs: Iterable[Any], estimators: Iterable[str], wait: float = 600.0, **request: Any
    ) -> Study:
        started = time.monotonic()
        record = await self.start_study(study, archs, estimators, **request)
        while not record.done:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise ArchscoreError(None, f"study {record.study_id} not done after {wait:.0f} s", body=record)
            record = await self._poll(self.study, record.study_id, remaining)
        return record

    async def train_supernet(self, name: str, wait: float = 0.0, **options: Any) -> Job:
        job = await self.start_training(name, **options)
        return await self.wait_for(job, wait) if wait > 0 else job

    async def average_supernets(
        self, name: str, checkpoints: Iterable[str] = (), snapshots_of: str | None = None, wait: float = 0.0
    ) -> Job:
        job = await self.start_average(name, checkpoints, snapshots_of)
        return await self.wait_for(job, wait) if wait > 0 else job
