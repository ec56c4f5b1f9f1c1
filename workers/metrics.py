"""What the workers count for the API's /metrics (workers are processes of their own, so they count in
Redis, where the API reads at each scrape: archscore.service.metrics): each scoring chunk's duration and
failure per estimator set, and the trainings in progress."""

from __future__ import annotations

import time

import redis

from archscore.contract import store
from archscore.contract.settings import get_settings


def record_chunk(r: redis.Redis, estimators: list[str], seconds: float | None, failed: bool) -> None:
    """Add one chunk to its estimator set's counters (atomic increments: workers count side by side);
    ``seconds`` None: the chunk did not run (given up), only its failure counts."""
    name = store.estimator_set(estimators)
    key = store.chunk_stats_key(name)
    pipe = r.pipeline(transaction=False)
    for field, count in store.chunk_increments(seconds, failed).items():
        pipe.hincrby(key, field, count)
    if seconds is not None:
        pipe.hincrbyfloat(key, "sum", seconds)
    pipe.expire(key, store.METRICS_TTL_SECONDS)
    pipe.zadd(store.chunk_sets_key(), {name: time.time()})
    pipe.zremrangebyscore(store.chunk_sets_key(), 0, time.time() - store.METRICS_TTL_SECONDS)
    pipe.expire(store.chunk_sets_key(), store.METRICS_TTL_SECONDS)
    pipe.execute()


def training_reported(r: redis.Redis, job_id: str) -> None:
    """A training reported progress: it is listed (with the time) until it ends. Entries of trainings
    whose worker died (never ended) are dropped a job lifetime after their last report."""
    key, now, ttl = store.training_active_key(), time.time(), get_settings().job_ttl_seconds
    pipe = r.pipeline(transaction=False)
    pipe.zadd(key, {job_id: now})
    pipe.zremrangebyscore(key, 0, now - ttl)
    pipe.expire(key, ttl)
    pipe.execute()


def training_ended(r: redis.Redis, job_id: str) -> None:
    r.zrem(store.training_active_key(), job_id)
