"""Jobs: validate a score request, answer it from the cache, enqueue the rest, assemble results."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.estimators.catalog import ESTIMATORS, is_one_shot
from archscore.estimators.datasets import training_images_available
from archscore.estimators.one_shot.registry import CheckpointError, resolve
from archscore.estimators.protocol import cache_key, scored_arch
from archscore.estimators.spaces import DEFAULT_SPACE, get_space
from archscore.estimators.spaces.base import SUPERNET, Arch, SearchSpace
from archscore.service import store
from archscore.service.analytic import analytic_names, analytic_scores
from archscore.service.cached import answer_from_cache as answer_from_cache_script
from archscore.service.deps import chunk_task_id
from archscore.service.rankings import rankings, select
from archscore.service.errors import ApiError
from archscore.service.schemas import ApiProtocol, ScoreRequest
from archscore.service.settings import Settings
from archscore.service.truth_tables import shown_name, stored_name, truth_values


CACHE = Counter("archscore_score_cache_total", "architecture classes answered from the cache or enqueued", ["outcome"])


@dataclass
class ValidRequest:
    space: SearchSpace
    archs: list[Arch]
    estimators: list[str]
    protocol: dict
    protocol_hash: str
    truth: str | None


async def validate(request: ScoreRequest, settings: Settings, redis: Redis, owner: str = "") -> ValidRequest:
    """Every problem of the request at once, as 422 details naming the field; nothing is stored. An
    uploaded truth table is looked up in ``owner``'s namespace."""
    details: list[tuple[str, str]] = []
    try:
        space = get_space(request.space)
    except KeyError as exc:
        raise ApiError(422, "unknown search space", [("space", exc.args[0])]) from None
    if len(request.archs) > settings.max_archs_per_request:
        raise ApiError(
            422, "too many architectures",
            [("archs", f"{len(request.archs)} given, at most {settings.max_archs_per_request} per request")],
        )
    for i, name in enumerate(request.estimators):
        if name not in ESTIMATORS:
            details.append((f"estimators[{i}]", f"unknown estimator {name!r}"))
        elif is_one_shot(name) and not space.has(SUPERNET):
            details.append((f"estimators[{i}]", f"search space {space.name} has no supernet for one-shot estimators"))
    supernet_sha256 = weights_sha256 = None
    if any(is_one_shot(n) for n in request.estimators) and space.has(SUPERNET):
        supernet_sha256 = await _checkpoint(
            "protocol.oneshot.supernet", request.protocol.oneshot.supernet, space, settings, details
        )
    if request.protocol.weights is not None:
        if space.has(SUPERNET) and space.supernet_transfers_weights:
            weights_sha256 = await _checkpoint("protocol.weights", request.protocol.weights, space, settings, details)
        else:
            details.append(("protocol.weights", f"search space {space.name} has no supernet whose weights its "
                                                "standalone networks can take"))
    archs: list[Arch] = []
    for i, encoding in enumerate(request.archs):
        try:
            archs.append(parse_memoised(space, encoding))
        except ValueError as exc:
            details.append((f"archs[{i}]", str(exc)))
    details += data_problems(request.protocol, settings)
    details += work_problems(request.estimators, [request.protocol], space, settings, len(request.archs))
    truth = request.truth_column(space)
    if truth is not None and not await truth_exists(redis, space, stored_name(space, truth, owner)):
        details.append(("truth", f"no ground-truth column {truth!r} for {space.name}"))
    truth = None if truth is None else stored_name(space, truth, owner)
    if details:
        message = "invalid request"
        if any(field.startswith("estimators") for field, _ in details):
            message += f"; available estimators: {', '.join(ESTIMATORS)}"
        raise ApiError(422, message, details)
    protocol, protocol_hash = _protocol(
        request.protocol.model_dump_json(), settings.cifar_root, supernet_sha256, weights_sha256
    )
    return ValidRequest(space, archs, list(dict.fromkeys(request.estimators)), protocol, protocol_hash, truth)


# Memoised: a search loop sends the same protocol and meets the same architectures again and again, and
# building the protocol (~40 us) and parsing an encoding (~25 us) are a tenth of a cached answer's CPU.
@functools.lru_cache(maxsize=1024)
def _protocol(api_protocol_json: str, data_root: str | None, supernet_sha256: str | None,
              weights_sha256: str | None) -> tuple[dict, str]:
    """The library protocol as a dict (shared between requests: never mutated) and its hash."""
    protocol = ApiProtocol.model_validate_json(api_protocol_json).to_protocol(data_root, supernet_sha256, weights_sha256)
    return protocol.model_dump(), protocol.hash()


async def _checkpoint(field: str, ref: str | None, space: SearchSpace, settings: Settings,
                      details: list[tuple[str, str]]) -> str | None:
    """The sha256 of the checkpoint ``ref`` names (default: the newest complete one), which must be a
    supernet of ``space``; else a detail for ``field`` and None."""
    try:
        checkpoint = await run_in_threadpool(resolve, settings.supernet_path, ref, space.name)
    except CheckpointError as exc:
        details.append((field, str(exc)))
        return None
    if (checkpoint["space"] or DEFAULT_SPACE) != space.name:
        details.append((field, f"checkpoint {checkpoint['name']!r} is a supernet of {checkpoint['space']}, "
                               f"not of {space.name}"))
        return None
    return checkpoint["sha256"]


_PARSED_KEPT = 50_000
_parsed: dict[tuple[str, str, str], Arch] = {}


def parse_memoised(space: SearchSpace, encoding) -> Arch:
    """``space.parse(encoding)`` (architectures are immutable), remembered per encoding as sent;
    invalid encodings are not remembered."""
    text = encoding if type(encoding) in (str, int) else json.dumps(encoding, sort_keys=True)
    key = (space.name, type(encoding).__name__, text)
    arch = _parsed.get(key)
    if arch is None:
        arch = space.parse(encoding)
        if len(_parsed) >= _PARSED_KEPT:
            _parsed.clear()
        _parsed[key] = arch
    return arch


def work_problems(estimators: list[str], protocols: list, space: SearchSpace, settings: Settings, count: int,
                  field: str = "archs") -> list[tuple[str, str]]:
    """A bound on the work one request may enqueue: architectures x estimators x images each, summed over
    the protocols it scores under (a score request has one; a study may derive several). params and
    flops, answered by the API itself, do not count."""
    names = set(estimators) - set(analytic_names(space, list(estimators)))
    images = sum(p.batch_size * p.num_batches for p in protocols)
    work = count * len(names) * images
    if work <= settings.max_work_per_request:
        return []
    under = f" under {len(protocols)} protocols" if len(protocols) > 1 else ""
    return [(field, f"{count} architectures x {len(names)} estimators x {images} images{under} = "
             f"{work:,} exceeds this server's bound of {settings.max_work_per_request:,} per request; split it")]


def data_problems(protocol, settings: Settings, field: str = "protocol") -> list[tuple[str, str]]:
    """What the workers could not run: a dataset this server has no data for, or more images per
    architecture than the dataset holds."""
    available = training_images_available(settings.cifar_root)
    if protocol.dataset not in available:
        names = ", ".join(available) or "none"
        return [(f"{field}.dataset", f"{protocol.dataset} is not configured on this server (available: {names})")]
    needed = protocol.batch_size * protocol.num_batches
    if needed > available[protocol.dataset]:
        return [(f"{field}.batch_size", f"batch_size x num_batches = {needed} exceeds the "
                 f"{available[protocol.dataset]} training images of {protocol.dataset} on this server")]
    return []


async def truth_exists(redis: Redis, space: SearchSpace, name: str) -> bool:
    return name in space.ground_truth_columns or bool(await redis.exists(store.truth_key(space.name, name)))


@dataclass
class Plan:
    """What a valid request asks of the store, worked out without touching it."""

    request: ValidRequest
    job: dict  # the job record, as for a request answered wholly from the cache
    unique: list[str]  # canonical keys, each once, in order of first appearance
    score_keys: dict[str, str]  # estimator -> score cache key, for the estimators workers compute
    representative: dict[str, str]  # canonical key -> the architecture a worker scores for its class


@functools.lru_cache(maxsize=50_000)  # the cached path meets the same architectures again and again
def arch_facts(space_name: str, arch: str, per_member: bool = False) -> tuple[str, str, str]:
    """(cache key, truth key, string form of what a worker scores) of an architecture in string form:
    its isomorphism class and representative, or with ``per_member`` the architecture itself."""
    space = get_space(space_name)
    parsed = space.parse(arch)
    scored = space.to_string(scored_arch(space, parsed, per_member))
    return cache_key(space, parsed, per_member), space.truth_key(parsed), scored


def plan(v: ValidRequest, owner: str = "") -> Plan:
    space = v.space
    texts = [space.to_string(a) for a in v.archs]
    per_member = v.protocol.get("per_member", False)
    facts = [arch_facts(space.name, t, per_member) for t in texts]
    canonical = [f[0] for f in facts]
    unique = list(dict.fromkeys(canonical))
    analytic = analytic_names(space, v.estimators)
    score_keys = {
        n: store.score_key(space.name, v.protocol_hash, n, ESTIMATORS[n].version) for n in v.estimators
        if n not in analytic
    }
    representative = {}
    for c, (_, _, rep) in zip(canonical, facts):
        representative.setdefault(c, rep)
    job = {
        "job_id": uuid.uuid4().hex,
        "owner": owner,
        "space": space.name,
        "estimators": v.estimators,
        "protocol": v.protocol,
        "protocol_hash": v.protocol_hash,
        "truth": v.truth,
        "archs": texts,
        "canonical": canonical,
        "truth_keys": [f[1] for f in facts],
        "chunk_sizes": [],
        "cached": len(unique),
        "created": time.time(),
    }
    return Plan(v, job, unique, score_keys, representative)


async def answer_from_cache(p: Plan, settings: Settings, redis: Redis) -> dict | list[str]:
    """The finished job's body (results and ranking statistics) when the cache holds every score;
    else the canonical keys of the classes to score (nothing written)."""
    v, job = p.request, p.job
    space, phash = v.space.name, v.protocol_hash
    uploaded = v.truth is not None and v.truth not in v.space.ground_truth_columns
    answer = await answer_from_cache_script(
        redis, score_keys=list(p.score_keys.values()), unique=p.unique,
        members=dict(zip(job["archs"], job["canonical"])), members_key=store.members_key(space, phash),
        protocol_key=store.protocol_key(space, phash), protocols_key=store.protocols_key(space),
        generation_key=store.generation_key(space, phash),
        rankings_key=store.rankings_key(space, phash, v.truth or ""), job_key=store.job_key(job["job_id"]),
        truth_key=store.truth_key(space, v.truth or ""), protocol_json=store.encode(v.protocol),
        protocol_hash=phash, now=time.time(), cache_ttl=settings.cache_ttl_seconds,
        job_ttl=min(settings.cached_job_ttl_seconds, settings.job_ttl_seconds), job_json=store.encode(job),
        truth_keys=job["truth_keys"] if uploaded else [],
    )
    if isinstance(answer, list):
        return [c for c, missing in zip(p.unique, answer) if missing]
    if v.truth is None:
        truth: dict[str, float] = {}
    elif uploaded:
        truth = {k: float(x) for k, x in zip(job["truth_keys"], answer.truth) if x is not None}
    else:
        truth = await truth_values(redis, v.space, v.truth, job["truth_keys"])
    cells = {n: dict(zip(p.unique, map(store.decode, row))) for n, row in zip(p.score_keys, answer.rows)}
    stats = None
    if v.truth is not None:
        report = store.decode(answer.rankings)
        if report is None or report["generation"] != answer.generation:  # new scores since: recompute
            report = await rankings(redis, v.space, phash, v.truth)
        stats = select(report, v.estimators)
    results = assemble_results(v.space, job, cells, {}, truth)
    return job_body(job, "done", (0, 0), results, stats)


async def plan_and_answer_from_cache(
    request: ScoreRequest, settings: Settings, redis: Redis, owner: str = ""
) -> tuple[Plan, dict | list[str]]:
    """Validate (ApiError when invalid; nothing stored), plan, and answer from the cache: the plan with
    the finished job's body, or with the canonical keys still to score (nothing written). The job is
    ``owner``'s."""
    p = plan(await validate(request, settings, redis, owner), owner)
    answer = await answer_from_cache(p, settings, redis)
    if isinstance(answer, dict):
        CACHE.labels("hit").inc(len(p.unique))
    return p, answer


async def create_job(p: Plan, missing: list[str], settings: Settings, redis: Redis, send_chunk) -> dict:
    """Store the job (without a TTL until it finishes) and enqueue a task per chunk of missing classes."""
    v, job = p.request, p.job
    space, phash = v.space.name, v.protocol_hash
    chunks = [missing[i : i + settings.chunk_size] for i in range(0, len(missing), settings.chunk_size)]
    job.update(chunk_sizes=[len(c) for c in chunks], cached=len(p.unique) - len(missing))
    CACHE.labels("hit").inc(job["cached"])
    CACHE.labels("miss").inc(len(missing))
    ttl = settings.cache_ttl_seconds
    pipe = redis.pipeline()
    pipe.set(store.job_key(job["job_id"]), store.encode(job))
    pipe.hset(store.members_key(space, phash), mapping=dict(zip(job["archs"], job["canonical"])))
    pipe.set(store.protocol_key(space, phash), store.encode(v.protocol), ex=ttl)
    pipe.zadd(store.protocols_key(space), {phash: time.time()})
    for key in (store.members_key(space, phash), store.protocols_key(space), *p.score_keys.values()):
        pipe.expire(key, ttl)
    pipe.zadd(store.recent_key("jobs"), {job["job_id"]: job["created"]})
    pipe.zremrangebyrank(store.recent_key("jobs"), 0, -store.RECENT_KEPT - 1)
    pipe.expire(store.recent_key("jobs"), ttl)
    _, new_members, *_ = await pipe.execute()
    if new_members:  # architectures joined the ranking population (cached or analytic scores): stats are stale
        pipe = redis.pipeline()
        pipe.incr(store.generation_key(space, phash))
        pipe.expire(store.generation_key(space, phash), ttl)
        await pipe.execute()
    await run_in_threadpool(
        lambda: [
            send_chunk(job["job_id"], i, space, v.protocol, list(p.score_keys), [p.representative[c] for c in chunk])
            for i, chunk in enumerate(chunks)
        ]
    )
    return job


async def load_job(redis: Redis, job_id: str, caller=None) -> dict:
    """The job record; 404 when it is unknown, expired, or another key's (``caller.may_see``)."""
    job = store.decode(await redis.get(store.job_key(job_id)))
    if job is None or (caller is not None and not caller.may_see(job.get("owner"))):
        raise ApiError(404, f"no job {job_id!r} (unknown or expired)")
    return job


async def _unfinished(redis: Redis, job_id: str) -> bool:
    job = store.decode(await redis.get(store.job_key(job_id)))
    if job is None or await redis.exists(store.job_cancelled_key(job_id)):
        return False
    if job.get("kind") in ("supernet_training", "supernet_average"):
        status = store.decode(await redis.get(store.training_status_key(job_id))) or {}
        return status.get("status") in ("queued", "running")
    done, total = await job_progress(redis, job)
    return done < total


async def admit_job(redis: Redis, settings: Settings, caller, job_id: str) -> None:
    """Count a new unfinished job against its key's quota (429 when the key already has
    ``max_active_jobs_per_key``); nothing to count on a server without keys."""
    if not caller.owner:
        return
    key = store.active_jobs_key(caller.owner)
    listed = await redis.zrange(key, 0, -1)
    active = [i for i in listed if await _unfinished(redis, i)]
    if len(listed) > len(active):
        await redis.zrem(key, *(set(listed) - set(active)))
    if len(active) >= settings.max_active_jobs_per_key:
        raise ApiError(429, "too many unfinished jobs", [("X-API-Key", f"{len(active)} unfinished jobs, at most "
                       f"{settings.max_active_jobs_per_key} per key (ARCHSCORE_MAX_ACTIVE_JOBS_PER_KEY); wait for "
                       "one to finish or cancel one")], headers={"Retry-After": "5"})
    pipe = redis.pipeline()
    pipe.zadd(key, {job_id: time.time()})
    pipe.expire(key, settings.job_ttl_seconds)
    await pipe.execute()


async def job_progress(redis: Redis, job: dict) -> tuple[int, int]:
    sizes = job["chunk_sizes"]
    if not sizes:
        return 0, 0
    done_chunks = await redis.smembers(store.job_done_key(job["job_id"]))
    done = sum(sizes[int(i)] for i in done_chunks if int(i) < len(sizes))
    return done, sum(sizes)


async def wait_for_job(redis: Redis, job: dict, seconds: float) -> None:
    """Poll (without blocking the event loop) until the job is done or ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while time.monotonic() < deadline:
        done, total = await job_progress(redis, job)
        if done >= total or await redis.exists(store.job_cancelled_key(job["job_id"])):
            return
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)


async def cancel_job(redis: Redis, job: dict, settings: Settings, revoke) -> None:
    """Mark the job cancelled (workers skip its chunks, and a running chunk stops after its current
    architecture) and revoke its queued chunks (``revoke(task_ids)``, a broadcast to live workers)."""
    done, total = await job_progress(redis, job)
    if done >= total:
        raise ApiError(409, "the job has finished", [("job_id", "only a queued or running job can be cancelled")])
    job_id = job["job_id"]
    pipe = redis.pipeline()
    pipe.set(store.job_cancelled_key(job_id), "1")
    for key in store.job_keys(job_id):  # the job has ended: it may expire now
        pipe.expire(key, settings.job_ttl_seconds)
    await pipe.execute()
    finished = {int(i) for i in await redis.smembers(store.job_done_key(job_id))}
    pending = [chunk_task_id(job_id, i) for i in range(len(job["chunk_sizes"])) if i not in finished]
    await run_in_threadpool(revoke, pending)


async def render_job(redis: Redis, job: dict, rankings: dict | None) -> dict:
    done, total = await job_progress(redis, job)
    status = "done" if done >= total else ("running" if done else "queued")
    if await redis.exists(store.job_cancelled_key(job["job_id"])):  # only an unfinished job can be cancelled
        status = "cancelled"
    results = None
    if status in ("done", "cancelled"):
        results = await job_results(redis, job, cancelled=status == "cancelled")
    return job_body(job, status, (done, total), results, rankings)


def job_body(job: dict, status: str, progress: tuple[int, int], results: list | None, rankings: dict | None) -> dict:
    return {
        "job_id": job["job_id"],
        "kind": "scores",
        "status": status,
        "progress": {"done": progress[0], "total": progress[1]},
        "space": job["space"],
        "estimators": job["estimators"],
        "protocol": job["protocol"],
        "protocol_hash": job["protocol_hash"],
        "truth": shown_name(job["truth"]),
        "cached": job["cached"],
        "results": results,
        "rankings": rankings,
    }


async def job_results(redis: Redis, job: dict, cancelled: bool = False) -> list[dict]:
    """One result per requested architecture, from the cache (scores) and the job's errors."""
    space = get_space(job["space"])
    unique = list(dict.fromkeys(job["canonical"]))
    analytic = analytic_names(space, job["estimators"])
    keys = {
        n: store.score_key(space.name, job["protocol_hash"], n, ESTIMATORS[n].version)
        for n in job["estimators"]
        if n not in analytic
    }
    pipe = redis.pipeline()
    for key in keys.values():
        pipe.hmget(key, unique)
    pipe.hmget(store.job_errors_key(job["job_id"]), unique)
    *rows, errors = await pipe.execute()
    cells = {n: dict(zip(unique, map(store.decode, row))) for n, row in zip(keys, rows)}
    if cancelled:
        errors = [e or ("cancelled before it was scored" if any(cells[n][c] is None for n in cells) else None)
                  for c, e in zip(unique, errors)]
    truth = await truth_values(redis, space, job["truth"], job["truth_keys"]) if job["truth"] else {}
    return assemble_results(space, job, cells, dict(zip(unique, errors)), truth)


def assemble_results(space: SearchSpace, job: dict, cells: dict[str, dict[str, dict | None]],
                     errors: dict[str, str | None], truth: dict[str, float]) -> list[dict]:
    """One result per requested architecture, in request order; ``cells`` holds each estimator's
    cache cell per canonical key (params and flops are computed here, per architecture)."""
    analytic = analytic_names(space, job["estimators"])
    results = []
    for i, (arch, c, truth_key) in enumerate(zip(job["archs"], job["canonical"], job["truth_keys"])):
        row = {n: by_class.get(c) for n, by_class in cells.items()}
        scores = {n: (cell or {}).get("value") for n, cell in row.items()}
        if analytic:
            scores.update(analytic_scores(space, arch, analytic, job["protocol"]))
        results.append(
            {
                "index": i,
                "arch": arch,
                "canonical_key": c,
                "scores": {n: scores[n] for n in job["estimators"]},
                "reasons": {n: cell["reason"] for n, cell in row.items() if cell and cell.get("reason")},
                "devices": {n: cell["device"] for n, cell in row.items() if cell and cell.get("device")},
                "ground_truth": truth.get(truth_key),
                "error": errors.get(c),
            }
        )
    return results
