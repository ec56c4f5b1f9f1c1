"""Jobs once stored: look one up, its progress and status, wait for it, cancel it, list the recent ones,
and count a key's unfinished jobs against its quota. Scoring jobs here; training jobs' own parts are in
archscore.service.supernets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.records import Job, ScoreJob
from archscore.contract.settings import Settings
from archscore.contract.tasks import chunk_task_id
from archscore.service.deps import Caller
from archscore.service.errors import ApiError

Revoke = Callable[[list[str]], None]  # a broadcast to live workers: drop these queued tasks


async def load_job(redis: Redis, job_id: str, caller: Caller | None = None) -> Job:
    """The job record; 404 when it is unknown, expired, or another key's (``caller.may_see``)."""
    job = store.decode_job(await redis.get(store.job_key(job_id)))
    if job is None or (caller is not None and not caller.may_see(job.owner)):
        raise ApiError(404, f"no job {job_id!r} (unknown or expired)")
    return job


async def job_progress(redis: Redis, job: ScoreJob) -> tuple[int, int]:
    """(architecture classes scored, classes sent to the workers)."""
    sizes = job.chunk_sizes
    if not sizes:
        return 0, 0
    done_chunks = await redis.smembers(store.job_done_key(job.job_id))
    done = sum(sizes[int(i)] for i in done_chunks if int(i) < len(sizes))
    return done, sum(sizes)


async def job_status(redis: Redis, job: ScoreJob, done: int, total: int) -> str:
    """cancelled, done, running (a worker has begun one of its chunks) or queued."""
    if await redis.exists(store.job_cancelled_key(job.job_id)):  # only an unfinished job can be cancelled
        return "cancelled"
    if done >= total:
        return "done"
    return "running" if done or await redis.exists(store.job_started_key(job.job_id)) else "queued"


async def unfinished(redis: Redis, job_id: str) -> bool:
    job = store.decode_job(await redis.get(store.job_key(job_id)))
    if job is None or await redis.exists(store.job_cancelled_key(job_id)):
        return False
    if not isinstance(job, ScoreJob):
        status = store.decode_training_status(await redis.get(store.training_status_key(job_id)))
        return status is not None and status.unfinished
    done, total = await job_progress(redis, job)
    return done < total


async def admit_job(redis: Redis, settings: Settings, caller: Caller, job_id: str) -> None:
    """Count a new unfinished job against its key's quota (429 when the key already has
    ``max_active_jobs_per_key``); nothing to count on a server without keys."""
    if not caller.owner:
        return
    key = store.active_jobs_key(caller.owner)
    listed = await redis.zrange(key, 0, -1)
    active = [i for i in listed if await unfinished(redis, i)]
    if len(listed) > len(active):
        await redis.zrem(key, *(set(listed) - set(active)))
    if len(active) >= settings.max_active_jobs_per_key:
        raise ApiError(
            429,
            "too many unfinished jobs",
            [
                (
                    "X-API-Key",
                    f"{len(active)} unfinished jobs, at most "
                    f"{settings.max_active_jobs_per_key} per key (ARCHSCORE_MAX_ACTIVE_JOBS_PER_KEY); wait for "
                    "one to finish or cancel one",
                )
            ],
            headers={"Retry-After": "5"},
        )
    pipe = redis.pipeline()
    pipe.zadd(key, {job_id: time.time()})
    pipe.expire(key, settings.job_ttl_seconds)
    await pipe.execute()


async def wait_for_job(redis: Redis, job: ScoreJob, seconds: float) -> None:
    """Poll (without blocking the event loop) until the job is done or ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while time.monotonic() < deadline:
        done, total = await job_progress(redis, job)
        if done >= total or await redis.exists(store.job_cancelled_key(job.job_id)):
            return
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)


async def cancel_job(redis: Redis, job: ScoreJob, settings: Settings, revoke: Revoke) -> None:
    """Mark the job cancelled (workers skip its chunks, and a running chunk stops after its current
    architecture) and revoke its queued chunks."""
    done, total = await job_progress(redis, job)
    if done >= total:
        raise ApiError(409, "the job has finished", [("job_id", "only a queued or running job can be cancelled")])
    job_id = job.job_id
    pipe = redis.pipeline()
    pipe.set(store.job_cancelled_key(job_id), "1")
    for key in store.job_keys(job_id):  # the job has ended: it may expire now
        pipe.expire(key, settings.job_ttl_seconds)
    await pipe.execute()
    finished = {int(i) for i in await redis.smembers(store.job_done_key(job_id))}
    pending = [chunk_task_id(job_id, i) for i in range(len(job.chunk_sizes)) if i not in finished]
    await run_in_threadpool(revoke, pending)


async def recent_jobs(redis: Redis, caller: Caller, limit: int) -> list[dict]:
    """The newest scoring jobs that went to the workers and ``caller`` may see, with their progress."""
    listed: list[dict] = []
    for job_id in await redis.zrevrange(store.recent_key("jobs"), 0, -1):
        if len(listed) >= limit:
            break
        job = store.decode_job(await redis.get(store.job_key(job_id)))
        if isinstance(job, ScoreJob) and caller.may_see(job.owner):
            done, total = await job_progress(redis, job)
            listed.append(
                {
                    "job_id": job_id,
                    "space": job.space,
                    "estimators": job.estimators,
                    "status": await job_status(redis, job, done, total),
                    "progress": {"done": done, "total": total},
                    "created": job.created,
                }
            )
    return listed
