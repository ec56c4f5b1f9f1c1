"""Ranking-quality statistics over every scored architecture that has ground truth, cached in Redis.

The cache entry records the generation counter of its (space, protocol) when it was computed; new
scores bump the counter, so statistics are recomputed only when new scores have landed.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.settings import get_settings
from archscore.estimators.catalog import ESTIMATORS, POPULATION, is_population
from archscore.estimators.population import population_scores
from archscore.estimators.predictor import PredictorModel
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces.base import Arch, SearchSpace
from archscore.service.analytic import analytic_names, analytic_values, num_classes
from archscore.service.errors import ApiError
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
        members = await redis.hgetall(store.members_key(space.name, protocol_hash))  # arch -> cache key
        parsed = await run_in_threadpool(lambda: {a: space.parse(a) for a in members})
        truth_by_arch = await _truth_by_arch(redis, space, truth, parsed)
        canon = list(dict.fromkeys(members.values()))
        analytic = analytic_names(space, list(ESTIMATORS))
        names = [n for n in ESTIMATORS if n not in analytic and not is_population(n)]
        rows: list = [[] for _ in names]
        if canon:
            pipe = redis.pipeline()
            for name in names:
                pipe.hmget(store.score_key(space.name, protocol_hash, name), canon)
            rows = await pipe.execute()
        protocol = store.decode(await redis.get(store.protocol_key(space.name, protocol_hash))) or {}
        report = await run_in_threadpool(
            _compute, space, members, parsed, truth_by_arch, dict(zip(names, rows)), canon, analytic, protocol
        )
        report = {"protocol_hash": protocol_hash, "truth": truth, "generation": generation, **report}
        await redis.set(key, store.encode(report), ex=get_settings().cache_ttl_seconds)
        return report


async def _truth_by_arch(redis: Redis, space: SearchSpace, truth: str, parsed: dict[str, Arch]) -> dict[str, float]:
    """Ground truth of each architecture (string form) that has one."""
    truth_keys = {a: space.truth_key(arch) for a, arch in parsed.items()}
    by_key = await truth_values(redis, space, truth, list(dict.fromkeys(truth_keys.values())))
    return {a: by_key[k] for a, k in truth_keys.items() if k in by_key}


async def _cached(redis: Redis, space: SearchSpace, protocol_hash: str, key: str) -> tuple[dict | None, int]:
    raw_generation, raw_cached = await redis.mget(store.generation_key(space.name, protocol_hash), key)
    generation = int(raw_generation or 0)
    cached = store.decode(raw_cached)
    return (cached if cached is not None and cached["generation"] == generation else None), generation


def _compute(space, members, parsed, truth_by_arch, rows_by_name, canon, analytic, protocol) -> dict:
    archs = [a for a in members if a in truth_by_arch]
    report: dict = {"n": 0, "estimators": {}}
    cells_by_name = {}
    for name, row in rows_by_name.items():
        cells = {c: cell for c, raw in zip(canon, row) if (cell := store.decode_cell(raw)) is not None}
        cells_by_name[name] = cells
        scored = [a for a in archs if members[a] in cells]
        if len(scored) < 2:
            continue
        scores = [cells[members[a]].value for a in scored]
        report["estimators"][name] = ranking_report(
            scores, [truth_by_arch[a] for a in scored], [members[a] + a for a in scored]
        )
        report["n"] = max(report["n"], len(scored))
    if len(archs) >= 2 and analytic:
        classes = num_classes(protocol)
        per_arch = [analytic_values(space, parsed[a], analytic, classes) for a in archs]
        for name in analytic:
            report["estimators"][name] = ranking_report(
                [row[name] for row in per_arch], [truth_by_arch[a] for a in archs], [members[a] + a for a in archs]
            )
        report["n"] = max(report["n"], len(archs))
    for name, by_arch in _population_scores(space, members, parsed, cells_by_name, analytic, protocol).items():
        scored = [a for a in archs if by_arch[a] is not None]
        if len(scored) >= 2:
            report["estimators"][name] = ranking_report(
                [by_arch[a] for a in scored], [truth_by_arch[a] for a in scored], [members[a] + a for a in scored]
            )

    return report


async def _member_cells(
    redis: Redis, space: SearchSpace, protocol_hash: str, names: list[str], members: dict[str, str]
) -> dict[str, dict]:
    """For each estimator of ``names``: cache key -> its cached cell, over the protocol's classes."""
    canon = list(dict.fromkeys(members.values()))
    cells_by_name = {}
    for name in names:
        raw = await redis.hmget(store.score_key(space.name, protocol_hash, name), canon) if canon else []
        cells_by_name[name] = {c: cell for c, r in zip(canon, raw) if (cell := store.decode_cell(r)) is not None}
    return cells_by_name


def _member_rows(space, members, parsed, cells_by_name, analytic, protocol, names) -> dict[str, dict]:
    """architecture -> its values of ``names``, for the architectures scored under the protocol with every
    one of them (an undefined value counts as scored); ``analytic`` ones are computed here."""
    scored = [m for m in names if m not in analytic]
    if not all(m in cells_by_name for m in scored):
        return {}
    classes = num_classes(protocol)
    wanted = [m for m in names if m in analytic]
    rows = {}
    for a in members:
        if all(members[a] in cells_by_name[m] for m in scored):
            row: dict[str, float | None] = dict(analytic_values(space, parsed[a], wanted, classes))
            row.update({m: cells_by_name[m][members[a]].value for m in scored})
            rows[a] = row
    return rows


async def _population_of(
    redis: Redis, space: SearchSpace, protocol_hash: str, name: str, members: dict[str, str], parsed: dict[str, Arch]
) -> dict[str, float | None]:
    """The population estimator ``name``'s score of the architectures ``parsed`` (of ``members``, every
    architecture scored under the protocol, its population)."""
    info = POPULATION[name]
    analytic = analytic_names(space, [name])
    cells_by_name = await _member_cells(
        redis, space, protocol_hash, [m for m in info.members if m not in analytic], members
    )
    protocol = store.decode(await redis.get(store.protocol_key(space.name, protocol_hash))) or {}

    def compute() -> dict[str, float | None]:
        every = {a: parsed.get(a) or space.parse(a) for a in members}
        return _population_scores(space, members, every, cells_by_name, analytic, protocol, [name]).get(name, {})

    scores = await run_in_threadpool(compute)
    return {a: scores.get(a) for a in parsed}


def _population_scores(
    space, members, parsed, cells_by_name, analytic, protocol, names=None
) -> dict[str, dict[str, float | None]]:
    """Each population estimator's score of the architectures scored under the protocol with all its
    members (its population, archscore.estimators.population; a member's undefined value counts as
    scored); None for the other architectures."""
    out: dict[str, dict[str, float | None]] = {}
    for name, info in POPULATION.items():
        if names is not None and name not in names:
            continue
        if not all(m in cells_by_name for m in info.members if m not in analytic):
            continue
        rows = _member_rows(space, members, parsed, cells_by_name, analytic, protocol, info.members)
        values = dict(zip(rows, population_scores(info, list(rows.values()))))
        out[name] = {a: values.get(a) for a in members}
    return out


async def predictor_criteria(
    redis: Redis, space: SearchSpace, protocol_hash: str, truth: str, models: dict[str, PredictorModel]
) -> dict[str, dict]:
    """Each fitted predictor's ranking criteria over the architectures scored under the protocol with all
    its estimators, the classes of its training architectures left out (it was fitted on their labels)."""
    if not models:
        return {}
    members = await redis.hgetall(store.members_key(space.name, protocol_hash))  # arch -> cache key
    parsed = await run_in_threadpool(lambda: {a: space.parse(a) for a in members})
    truth_by_arch = await _truth_by_arch(redis, space, truth, parsed)
    out = {}
    for name, model in models.items():
        scores = await _predictor_scores(redis, space, protocol_hash, model, members, parsed)
        archs = [a for a in members if scores.get(a) is not None and a in truth_by_arch]
        if len(archs) >= 2:
            out[name] = ranking_report(
                [scores[a] for a in archs], [truth_by_arch[a] for a in archs], [members[a] + a for a in archs]
            )
    return out


async def _predictor_scores(
    redis: Redis,
    space: SearchSpace,
    protocol_hash: str,
    model: PredictorModel,
    members: dict[str, str],
    parsed: dict[str, Arch],
) -> dict[str, float]:
    """The predictor's value of each architecture scored under the protocol with all its estimators,
    except those of its training architectures' classes."""
    analytic = analytic_names(space, list(model.estimators))
    cells_by_name = await _member_cells(
        redis, space, protocol_hash, [m for m in model.estimators if m not in analytic], members
    )
    protocol = store.decode(await redis.get(store.protocol_key(space.name, protocol_hash))) or {}

    def compute() -> dict[str, float]:
        every = {a: parsed.get(a) or space.parse(a) for a in members}
        trained = {space.canonical_key(space.parse(a)) for a in model.train}
        rows = _member_rows(space, members, every, cells_by_name, analytic, protocol, model.estimators)
        held_out = [a for a in rows if space.canonical_key(every[a]) not in trained]
        if not held_out:
            return {}
        return dict(zip(held_out, model.predict(space, [every[a] for a in held_out], [rows[a] for a in held_out])))

    return await run_in_threadpool(compute)


def select(report: dict, estimators: list[str]) -> dict:
    return {**report, "estimators": {n: report["estimators"][n] for n in estimators if n in report["estimators"]}}


async def rankings_page(
    redis: Redis, space: SearchSpace, truth: str, protocol_hash: str | None, offset: int, limit: int
) -> tuple[int, list[dict]]:
    """(protocols in all, the reports of one page of them, most recently used first, each with its
    protocol): every protocol, or the one ``protocol_hash`` names (404 when it has no scores)."""
    index = store.protocols_key(space.name)
    if protocol_hash is not None:
        if await redis.zscore(index, protocol_hash) is None:
            raise ApiError(404, f"no scores under protocol {protocol_hash!r}")
        total, page = 1, [protocol_hash]
    else:
        total = await redis.zcard(index)
        page = await redis.zrevrange(index, offset, offset + limit - 1)
    reports, gone = [], []
    protocols = await redis.mget([store.protocol_key(space.name, h) for h in page]) if page else []
    for phash, protocol in zip(page, protocols):
        if protocol is None:  # expired or evicted with its scores
            gone.append(phash)
            continue
        report = await rankings(redis, space, phash, truth)
        reports.append({**report, "protocol": store.decode(protocol)})
    if gone:
        await redis.zrem(index, *gone)
    return total, reports


MAX_POINTS = 5000


async def ranking_points(
    redis: Redis,
    space: SearchSpace,
    protocol_hash: str,
    truth: str,
    estimator: str,
    model: PredictorModel | None = None,
) -> list[list]:
    """[score, ground truth, architecture] of up to MAX_POINTS scored architectures with ground truth
    (the dashboard's scatter); ``truth`` is the column's stored name; ``model``: the fitted predictor
    ``estimator`` names."""
    members = await redis.hgetall(store.members_key(space.name, protocol_hash))  # arch -> cache key
    archs = sorted(members)[:MAX_POINTS]
    parsed = await run_in_threadpool(lambda: {a: space.parse(a) for a in archs})
    truth_by_arch = await _truth_by_arch(redis, space, truth, parsed)
    scores: dict[str, float | None]
    if model is not None:
        predicted = await _predictor_scores(redis, space, protocol_hash, model, members, parsed)
        scores = {a: predicted.get(a) for a in archs}
    elif is_population(estimator):
        scores = await _population_of(redis, space, protocol_hash, estimator, members, parsed)
    elif estimator in analytic_names(space, [estimator]):
        protocol = store.decode(await redis.get(store.protocol_key(space.name, protocol_hash))) or {}
        classes = num_classes(protocol)
        scores = {a: analytic_values(space, parsed[a], [estimator], classes)[estimator] for a in archs}
    else:
        key = store.score_key(space.name, protocol_hash, estimator)
        cells = await redis.hmget(key, [members[a] for a in archs]) if archs else []
        values = [cell.value if (cell := store.decode_cell(raw)) else None for raw in cells]
        scores = dict(zip(archs, values))
    return [[scores[a], truth_by_arch[a], a] for a in archs if scores.get(a) is not None and a in truth_by_arch]
