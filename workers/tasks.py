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

from estimators.protocol import Protocol
from estimators.spaces import get_space
from estimators.zero_shot.manifest import ZERO_SHOT
from service import store
from service.settings import get_settings
from workers.celery_app import app

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def _client() -> redis.Redis:
    return _redis(app.conf.broker_url)


@functools.lru_cache(maxsize=1)
def _device() -> str:
    """Chosen on the first task of the process (torch is imported lazily, not at worker start)."""
    import torch

    from estimators.zero_shot.engine import pick_device

    if get_settings().torch_threads:
        torch.set_num_threads(get_settings().torch_threads)
    return pick_device(get_settings().device)


def _finish_chunk(r: redis.Redis, job_id: str, chunk_index: int, space: str, protocol_hash: str) -> None:
    pipe = r.pipeline()
    pipe.sadd(store.job_done_key(job_id), chunk_index)
    pipe.incr(store.generation_key(space, protocol_hash))
    pipe.expire(store.job_done_key(job_id), get_settings().job_ttl_seconds)
    pipe.execute()


@app.task(name="archscore.score_chunk", bind=True)
def score_chunk(
    self, job_id: str, chunk_index: int, space: str, protocol: dict, estimators: list[str], archs: list[str]
) -> dict:
    """Score ``archs`` (representatives of isomorphism classes, string form) with ``estimators``."""
    from estimators.zero_shot.engine import score_architecture

    r = _client()
    proto = Protocol.model_validate(protocol)
    phash = proto.hash()
    sp = get_space(space)
    keys = {name: store.score_key(sp.name, phash, name, ZERO_SHOT[name].version) for name in estimators}
    device = _device()
    scored = skipped = 0
    started = time.perf_counter()
    for arch_text in archs:
        arch = sp.parse(arch_text)
        canonical = sp.canonical_key(arch)
        pipe = r.pipeline()
        for key in keys.values():
            pipe.hexists(key, canonical)
        missing = [name for name, present in zip(keys, pipe.execute()) if not present]
        if not missing:
            skipped += 1
            continue
        try:
            result = score_architecture(arch, sp.name, missing, proto, device=device)
        except Exception as exc:  # one bad architecture must not sink the chunk
            log.exception("scoring %s failed", arch_text)
            r.hset(store.job_errors_key(job_id), canonical, f"{type(exc).__name__}: {exc}")
            continue
        pipe = r.pipeline()
        for name in missing:
            value = result.scores[name]
            pipe.hset(
                keys[name],
                canonical,
                store.encode({"value": value.value, "reason": value.reason, "per_batch": result.per_batch.get(name)}),
            )
        pipe.incr(store.generation_key(sp.name, phash))
        pipe.execute()
        scored += 1
    _finish_chunk(r, job_id, chunk_index, sp.name, phash)
    return {"scored": scored, "skipped": skipped, "seconds": round(time.perf_counter() - started, 3), "device": device}
