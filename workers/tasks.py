"""Celery tasks: score a chunk of architectures with the estimator library and write to Redis.

Each architecture's scores are written as soon as they exist, and the chunk is marked done after
the last one; the task is acknowledged only after it returns, so a worker killed mid-chunk loses at
most that chunk, which the broker redelivers (and which then skips what was already written).
"""

from __future__ import annotations

import functools
import logging
import time

import redis

from archscore.contract import store
from archscore.contract.records import ScoreCell
from archscore.contract.settings import get_settings
from archscore.contract.tasks import ScoreChunk
from archscore.estimators.catalog import ESTIMATORS
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.base import UPLOADED
from archscore.workers import models
from archscore.workers.celery_app import app
from archscore.workers.metrics import record_chunk
from archscore.workers.plugins import check_plugins

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # a worker cut off from Redis (no reset) fails its command after this long instead of waiting for ever
    timeout = get_settings().redis_socket_timeout
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout)


def _client() -> redis.Redis:
    return _redis(app.conf.broker_url)


@functools.lru_cache(maxsize=1)
def _device() -> str:
    """Chosen on the first task of the process (torch is imported lazily, not at worker start)."""
    import torch

    from archscore.estimators.device import resolve_device

    if get_settings().torch_threads:
        torch.set_num_threads(get_settings().torch_threads)
    return resolve_device(get_settings().device)


MAX_ATTEMPTS = 3  # a chunk delivered this often (its workers died) is given up with an error per architecture


def _finish_chunk(r: redis.Redis, job_id: str, chunk_index: int, space: str, protocol_hash: str, scored: int) -> None:
    """Mark the chunk done; after the job's last chunk the job's keys get their TTL (until then
    they have none, so that no eviction can drop an unfinished job)."""
    settings = get_settings()
    pipe = r.pipeline()
    pipe.sadd(store.job_done_key(job_id), chunk_index)
    if scored:
        pipe.incr(store.generation_key(space, protocol_hash))  # new scores: ranking statistics are stale
        pipe.expire(store.generation_key(space, protocol_hash), settings.cache_ttl_seconds)
    pipe.scard(store.job_done_key(job_id))
    pipe.get(store.job_key(job_id))
    pipe.exists(store.job_cancelled_key(job_id))
    *_, done, raw_job, cancelled = pipe.execute()
    job = store.decode_job(raw_job)
    # a cancelled job has ended too: the done set this chunk may just have created must expire with it
    if job is None or cancelled or done >= len(getattr(job, "chunk_sizes", ())):
        pipe = r.pipeline()
        for key in store.job_keys(job_id):
            pipe.expire(key, settings.job_ttl_seconds)
        pipe.execute()


def _record_errors(
    r: redis.Redis, job_id: str, space, proto: Protocol, estimators: list[str], archs: list[str], message: str
) -> None:
    """An error for each of ``archs`` that still lacks a score. One that another delivery of the chunk scored
    meanwhile keeps no stale error (this worker was cut off from Redis while the chunk ran again elsewhere,
    and its failure arrives once the network is back)."""
    keys = [store.score_key(space.name, proto.hash(), name) for name in estimators if name in ESTIMATORS]
    missing = len(keys) < len(estimators)  # an estimator not installed on this worker: none of its scores exist
    canonical = list(dict.fromkeys(proto.cache_key(space, space.parse(a)) for a in archs))
    pipe = r.pipeline()
    for key in canonical:
        for score_key in keys:
            pipe.hexists(score_key, key)
    found, n = pipe.execute(), len(keys)
    errors = {key: message for i, key in enumerate(canonical) if missing or not all(found[i * n : (i + 1) * n])}
    if errors:
        r.hset(store.job_errors_key(job_id), mapping=errors)


@app.task(name=ScoreChunk.task_name)
def score_chunk(**payload) -> dict:
    """Score a chunk (archscore.contract.tasks.ScoreChunk).

    The chunk is always marked done, with an error per architecture it could not score: a job never
    waits on a chunk that failed. A chunk whose workers keep dying is given up after MAX_ATTEMPTS."""
    chunk = ScoreChunk.model_validate(payload)
    job_id, chunk_index, estimators, archs = chunk.job_id, chunk.chunk_index, chunk.estimators, chunk.archs
    r = _client()
    sp = get_space(chunk.space)
    attempts_key = store.chunk_attempts_key(job_id, chunk_index)
    attempts = r.incr(attempts_key)
    r.expire(attempts_key, get_settings().job_ttl_seconds)
    proto = Protocol.model_validate(chunk.protocol)
    phash = proto.hash()
    if r.exists(store.job_cancelled_key(job_id)):
        return {"scored": 0, "skipped": 0, "cancelled": True}
    if attempts > MAX_ATTEMPTS:
        _record_errors(
            r,
            job_id,
            sp,
            proto,
            estimators,
            archs,
            f"given up after {MAX_ATTEMPTS} attempts: the worker died each time",
        )
        record_chunk(r, estimators, None, failed=True)
        _finish_chunk(r, job_id, chunk_index, sp.name, phash, 0)
        return {"scored": 0, "skipped": 0, "given_up": True}
    _mark_started(r, job_id)
    scored = skipped = failed = 0
    started = time.perf_counter()
    remaining = list(archs)
    try:
        scored, skipped, failed = _score_archs(r, job_id, sp, proto, estimators, remaining)
    except Exception as exc:
        log.exception("chunk %s of job %s failed", chunk_index, job_id)
        _record_errors(r, job_id, sp, proto, estimators, remaining, f"{type(exc).__name__}: {exc}")
        failed += len(remaining)
    seconds = time.perf_counter() - started
    record_chunk(r, estimators, seconds, failed > 0)  # counted before the chunk reads done
    _finish_chunk(r, job_id, chunk_index, sp.name, phash, scored)
    return {"scored": scored, "skipped": skipped, "seconds": round(seconds, 3)}


def _mark_started(r: redis.Redis, job_id: str) -> None:
    """The job reads running from now on (archscore.service.jobs.job_status), not from its first result."""
    key = store.job_started_key(job_id)
    pipe = r.pipeline()
    pipe.set(key, time.time(), nx=True)
    pipe.expire(key, get_settings().job_ttl_seconds)  # a chunk of a job that expired meanwhile leaves nothing
    pipe.execute()


def _score_archs(r: redis.Redis, job_id: str, sp, proto: Protocol, estimators: list[str], remaining: list[str]):
    """Score and write each architecture; ``remaining`` shrinks as architectures are done. Returns the
    architectures scored, skipped (already cached) and failed (an estimator raised)."""
    check_plugins(estimators)
    phash = proto.hash()
    keys = {name: store.score_key(sp.name, phash, name) for name in estimators}
    device = _device()
    scored = skipped = failed = 0
    cache_ttl = get_settings().cache_ttl_seconds
    while remaining:
        if r.exists(store.job_cancelled_key(job_id)):  # cancelled: stop after the architecture just scored
            break
        arch_text = remaining[0]
        arch = sp.parse(arch_text)
        canonical = proto.cache_key(sp, arch)
        pipe = r.pipeline()
        for key in keys.values():
            pipe.hexists(key, canonical)
        missing = [name for name, present in zip(keys, pipe.execute()) if not present]
        if not missing:
            skipped += 1
            remaining.pop(0)
            continue
        try:
            if sp.has(UPLOADED):  # the uploaded model, copied from Redis into this worker's model folder
                models.fetch(r, arch)
            cells, refused = _score_one(arch, sp.name, missing, proto, device)
        except Exception as exc:  # one bad architecture must not sink the chunk
            log.exception("scoring %s failed", arch_text)
            r.hset(store.job_errors_key(job_id), canonical, f"{type(exc).__name__}: {exc}")
            failed += 1
            remaining.pop(0)
            continue
        # a reason of this worker's (a network too large for its memory) is reported, never cached:
        # another worker, or this one with a smaller batch size, may score it
        pipe = r.pipeline()
        for name in missing:
            if name not in refused:
                pipe.hset(keys[name], canonical, store.encode_record(cells[name]))
                pipe.expire(keys[name], cache_ttl)
        if refused:
            pipe.hset(
                store.job_errors_key(job_id), canonical, "; ".join(sorted({cells[n].reason or "" for n in refused}))
            )
        else:
            pipe.hdel(store.job_errors_key(job_id), canonical)  # an earlier failed attempt no longer applies
        pipe.execute()
        scored += 1
        remaining.pop(0)
    return scored, skipped, failed


def _score_one(
    arch, space: str, names: list[str], proto: Protocol, device: str
) -> tuple[dict[str, ScoreCell], set[str]]:
    """Cache cells of one architecture for the estimators ``names``, and the names whose reason is this
    worker's (a network too large for its memory: reported, never cached)."""
    from archscore.estimators.scoring import score_one
    from archscore.workers.supernets import one_shot_scores, supernet

    result = score_one(
        arch,
        space,
        names,
        proto,
        device,
        supernets=lambda sha256: supernet(sha256, device),
        one_shot=lambda a, settings: one_shot_scores(a, settings, device),
    )
    cells = {
        name: ScoreCell(value=v.value, reason=v.reason, per_batch=result.per_batch.get(name), device=device)
        for name, v in result.scores.items()
    }
    return cells, {name for name, v in result.scores.items() if v.transient}
