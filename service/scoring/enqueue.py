"""Step 4: store a job whose scores are not all cached (without a TTL until it finishes, so no eviction
drops work in flight) and send one chunk task per slice of the classes still missing."""

from __future__ import annotations

import time

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.broker import send
from archscore.contract.records import ScoreJob
from archscore.contract.settings import Settings
from archscore.contract.tasks import ScoreChunk
from archscore.service import jobs
from archscore.service.deps import Caller
from archscore.service.scoring.cache import CACHE_HITS, CACHE_MISSES, answer_from_cache
from archscore.service.scoring.plan import Plan, plan
from archscore.service.scoring.validate import ValidRequest


async def create_job(p: Plan, missing: list[str], settings: Settings, redis: Redis, celery) -> ScoreJob:
    valid, job = p.request, p.job
    space, phash = valid.space.name, valid.protocol_hash
    chunks = [missing[i : i + settings.chunk_size] for i in range(0, len(missing), settings.chunk_size)]
    job.chunk_sizes, job.cached = [len(c) for c in chunks], len(p.unique) - len(missing)
    CACHE_HITS.inc(job.cached)
    CACHE_MISSES.inc(len(missing))
    ttl = settings.cache_ttl_seconds
    pipe = redis.pipeline()
    pipe.set(store.job_key(job.job_id), store.encode_record(job))
    pipe.hset(store.members_key(space, phash), mapping=dict(zip(job.archs, job.canonical)))
    pipe.set(store.protocol_key(space, phash), store.encode(valid.protocol_fields), ex=ttl)
    now = time.time()
    pipe.zadd(store.protocols_key(space), {phash: now})
    pipe.zremrangebyscore(store.protocols_key(space), "-inf", now - ttl)
    pipe.zremrangebyrank(store.protocols_key(space), 0, -store.PROTOCOLS_KEPT - 1)
    for key in (store.members_key(space, phash), *p.score_keys.values()):
        pipe.expire(key, ttl)
    pipe.zadd(store.recent_key("jobs"), {job.job_id: job.created})
    pipe.zremrangebyrank(store.recent_key("jobs"), 0, -store.RECENT_KEPT - 1)
    pipe.expire(store.recent_key("jobs"), ttl)
    _, new_members, *_ = await pipe.execute()
    if new_members:  # architectures joined the ranking population (cached or analytic scores): stats are stale
        pipe = redis.pipeline()
        pipe.incr(store.generation_key(space, phash))
        pipe.expire(store.generation_key(space, phash), ttl)
        await pipe.execute()
    tasks = [
        ScoreChunk(
            job_id=job.job_id,
            chunk_index=i,
            space=space,
            protocol=valid.protocol_fields,
            estimators=list(p.score_keys),
            archs=[p.scored(c) for c in chunk],
        )
        for i, chunk in enumerate(chunks)
    ]

    def send_all() -> None:
        for task in tasks:
            send(celery, task)

    await run_in_threadpool(send_all)
    return job


async def scoring_job(valid: ValidRequest, settings: Settings, redis: Redis, caller: Caller, celery) -> ScoreJob:
    """The job that scores a validated request for a study or a predictor: answered from the cache when it
    can be, else admitted against the caller's bound and enqueued."""
    p = plan(valid, caller.owner)
    missing = await answer_from_cache(p, settings, redis)
    if isinstance(missing, dict):
        return p.job  # every score cached: nothing to wait for
    await jobs.admit_job(redis, settings, caller, p.job.job_id)
    return await create_job(p, missing, settings, redis, celery)
