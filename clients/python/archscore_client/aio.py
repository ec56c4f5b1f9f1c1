"""The asynchronous client: the same routes, awaited."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx

from archscore_client.client import DEFAULT_URL, finish, retry_delay
from archscore_client.errors import ArchscoreError, JobTimeout
from archscore_client.models import ArchResult, Job
from archscore_client.routes import SERVER_DEFAULT, Call, Routes


class AsyncClient(Routes):
    """Asynchronous client of every route (``await client.spaces()``); options as ``Client``'s."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 30.0,
                 poll_seconds: float = 30.0, retries: int = 3, max_retry_wait: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout, self.poll_seconds = float(timeout), float(poll_seconds)
        self.retries, self.max_retry_wait = retries, max_retry_wait
        headers = {"Accept": "application/json", "User-Agent": "archscore-client/0.1"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout,
                                       transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _call(self, call: Call) -> Any:  # type: ignore[override]
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(call.method, call.path, params=call.params, json=call.json,
                                                    content=call.content, headers=call.headers,
                                                    timeout=self.timeout + call.wait)
            except httpx.TimeoutException as exc:
                raise ArchscoreError(None, f"{call.method} {self.base_url}{call.path} timed out: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise ArchscoreError(None, f"cannot reach {self.base_url}: {exc}") from exc
            delay = retry_delay(response, attempt, self.retries, self.max_retry_wait)
            if delay is None:
                return finish(call, response)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def wait_for(self, job: Job, wait: float) -> Job:
        started = time.monotonic()
        while not job.done:
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                raise JobTimeout(job, time.monotonic() - started)
            job = await self.job(job.job_id, wait=min(remaining, self.poll_seconds))
        if job.status == "failed":
            raise ArchscoreError(None, f"{job.kind} {job.raw.get('name')!r} failed: {job.raw.get('error')}", body=job)
        return job

    async def score(self, archs: Iterable[Any], estimators: Iterable[str], space: str | None = None,
                    protocol: Mapping[str, Any] | None = None, truth: Any = SERVER_DEFAULT,
                    wait: float = 300.0) -> Job:
        job = await self.submit(archs, estimators, space, protocol, truth)
        return await self.wait_for(job, wait) if wait > 0 else job

    async def iter_scores(self, archs: Iterable[Any], estimators: Iterable[str], chunk_size: int = 100,
                          in_flight: int = 4, wait: float = 3600.0, **request: Any) -> AsyncIterator[ArchResult]:
        """As ``Client.iter_scores``: results in request order as the chunks finish."""
        archs = list(archs)
        starts = iter(range(0, len(archs), chunk_size))
        pending: deque[tuple[int, Job]] = deque()
        deadline = time.monotonic() + wait

        async def submit_next() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append((start, await self.submit(archs[start:start + chunk_size], estimators, **request)))

        for _ in range(max(1, in_flight)):
            await submit_next()
        while pending:
            start, job = pending.popleft()
            job = await self.wait_for(job, max(0.0, deadline - time.monotonic()))
            await submit_next()
            for result in job.results or []:
                yield dataclasses.replace(result, index=start + result.index)

    async def train_supernet(self, name: str, wait: float = 0.0, **options: Any) -> Job:
        job = await self.start_training(name, **options)
        return await self.wait_for(job, wait) if wait > 0 else job
