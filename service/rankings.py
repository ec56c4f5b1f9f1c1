"""Ranking-quality statistics over every scored architecture that has ground truth, cached in Redis.

The cache entry records the generation counter of its (space, protocol) when it was computed; new
scores bump the counter, so statistics are recomputed only when new scores have landed.
"""

from __future__ import annotations

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from estimators.ranking import ranking_report
from estimators.spaces.base import SearchSpace
from estimators.zero_shot.manifest import ZERO_SHOT
from service import store
from service.analytic import analytic_names, analytic_scores
from service.truth_tables import truth_values


async def rankings(redis: Redis, space: SearchSpace, protocol_hash: str, truth: str) -> dict:
    """{"protocol_hash", "truth", "generation", "n", "estimators": {name: criteria}} for every
    estimator that has scores under this protocol."""
    key = store.rankings_key(space.name, protocol_hash, truth)
    raw_generation, raw_cached = await redis.mget(store.generation_key(space.name, protocol_hash), key)
    generation = int(raw_generation or 0)
    cached = store.decode(raw_cached)
    if cached is not None and cached["generation"] == generation:
        return cached
    members = await redis.hgetall(store.members_key(space.name, protocol_hash))  # arch -> canonical
    truth_by_arch = await truth_values(redis, space, truth, list(members))
    archs = [a for a in members if a in truth_by_arch]
    canon = list(dict.fromkeys(members[a] for a in archs))
    analytic = analytic_names(space, list(ZERO_SHOT))
    names = [n for n in ZERO_SHOT if n not in analytic]
    pipe = redis.pipeline()
    for name in names:
        pipe.hmget(store.score_key(space.name, protocol_hash, name, ZERO_SHOT[name].version), canon)
    rows = await pipe.execute() if canon else [[] for _ in names]
    report = {"protocol_hash": protocol_hash, "truth": truth, "generation": generation, "n": 0, "estimators": {}}
    for name, row in zip(names, rows):
        cells = {c: store.decode(raw) for c, raw in zip(canon, row) if raw is not None}
        scored = [a for a in archs if members[a] in cells]
        if len(scored) < 2:
            continue
        scores = [cells[members[a]]["value"] for a in scored]
        values = [truth_by_arch[a] for a in scored]
        ids = [members[a] + a for a in scored]
        report["estimators"][name] = await run_in_threadpool(ranking_report, scores, values, ids)
        report["n"] = max(report["n"], len(scored))
    if len(archs) >= 2 and analytic:
        protocol = store.decode(await redis.hget(store.protocols_key(space.name), protocol_hash)) or {}
        per_arch = [analytic_scores(space, a, analytic, protocol) for a in archs]
        for name in analytic:
            scores = [row[name] for row in per_arch]
            values = [truth_by_arch[a] for a in archs]
            ids = [members[a] + a for a in archs]
            report["estimators"][name] = await run_in_threadpool(ranking_report, scores, values, ids)
        report["n"] = max(report["n"], len(archs))
    await redis.set(key, store.encode(report))
    return report


def select(report: dict, estimators: list[str]) -> dict:
    return {**report, "estimators": {n: report["estimators"][n] for n in estimators if n in report["estimators"]}}
