"""Ranking-quality statistics over every scored architecture that has ground truth, cached in Redis.

The cache entry records the generation counter of its (space, protocol) when it was computed; new
scores bump the counter, so statistics are recomputed only when new scores have landed.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces.base import SearchSpace
from archscore.estimators.catalog import ESTIMATORS
from archscore.service import store
from archscore.service.analytic import analytic_names, analytic_scores
from archscore.service.settings import get_settings
from archscore.service.truth_tables import truth_values


_locks: dict[str, asyncio.Lock] = {}


async def rankings(redis: Redis, space: SearchSpace, protocol_hash: str, truth: str) -> dict:
    """{"protocol_hash", "truth", "generation", "n", "estimators": {name: criteria}} for every
    estimator that has scores under this protocol. One recomputation at a time per entry and API
    process; the computing runs in a worker thread, off the event loop."""
    key = store.rankings_key(space.name, protocol_hash, truth)
    cached, generation = await _cached(redis, space, protocol_hash, key)
    if cached is not None:
        return cached
    async with _locks.setdefault(key, asyncio.Lock()):
        cached, generation = await _cached(redis, space, protocol_hash, key)  # another request may have done it
        if cached is not None:
            return cached
        members = await redis.hgetall(store.members_key(space.name, protocol_hash))  # arch -> canonical
        truth_keys = await run_in_threadpool(lambda: {a: space.truth_key(space.parse(a)) for a in members})
        truth_by_key = await truth_values(redis, space, truth, list(dict.fromkeys(truth_keys.values())))
        truth_by_arch = {a: truth_by_key[k] for a, k in truth_keys.items() if k in truth_by_key}
        canon = list(dict.fromkeys(members.values()))
        analytic = analytic_names(space, list(ESTIMATORS))
        names = [n for n in ESTIMATORS if n not in analytic]
        rows: list = [[] for _ in names]
        if canon:
            pipe = redis.pipeline()
            for name in names:
                pipe.hmget(store.score_key(space.name, protocol_hash, name, ESTIMATORS[name].version), canon)
            rows = await pipe.execute()
        protocol = store.decode(await redis.get(store.protocol_key(space.name, protocol_hash))) or {}
        report = await run_in_threadpool(
            _compute, space, members, truth_by_arch, dict(zip(names, rows)), canon, analytic, protocol
        )
        report = {"protocol_hash": protocol_hash, "truth": truth, "generation": generation, **report}
        await redis.set(key, store.encode(report), ex=get_settings().cache_ttl_seconds)
        return report


async def _cached(redis: Redis, space: SearchSpace, protocol_hash: str, key: str) -> tuple[dict | None, int]:
    raw_generation, raw_cached = await redis.mget(store.generation_key(space.name, protocol_hash), key)
    generation = int(raw_generation or 0)
    cached = store.decode(raw_cached)
    return (cached if cached is not None and cached["generation"] == generation else None), generation


def _compute(space, members, truth_by_arch, rows_by_name, canon, analytic, protocol) -> dict:
    archs = [a for a in members if a in truth_by_arch]
    report: dict = {"n": 0, "estimators": {}}
    for name, row in rows_by_name.items():
        cells = {c: store.decode(raw) for c, raw in zip(canon, row) if raw is not None}
        scored = [a for a in archs if members[a] in cells]
        if len(scored) < 2:
            continue
        scores = [cells[members[a]]["value"] for a in scored]
        report["estimators"][name] = ranking_report(
            scores, [truth_by_arch[a] for a in scored], [members[a] + a for a in scored]
        )
        report["n"] = max(report["n"], len(scored))
    if len(archs) >= 2 and analytic:
        per_arch = [analytic_scores(space, a, analytic, protocol) for a in archs]
        for name in analytic:
            report["estimators"][name] = ranking_report(
                [row[name] for row in per_arch], [truth_by_arch[a] for a in archs], [members[a] + a for a in archs]
            )
        report["n"] = max(report["n"], len(archs))
    return report


def select(report: dict, estimators: list[str]) -> dict:
    return {**report, "estimators": {n: report["estimators"][n] for n in estimators if n in report["estimators"]}}
