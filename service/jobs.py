"""Jobs: validate a score request, answer it from the cache, enqueue the rest, assemble results."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from estimators.catalog import ESTIMATORS, is_one_shot
from estimators.datasets import training_images_available
from estimators.one_shot.registry import CheckpointError, resolve
from estimators.spaces import get_space
from estimators.spaces.base import SUPERNET, Arch, SearchSpace
from service import store
from service.analytic import analytic_names, analytic_scores
from service.errors import ApiError
from service.schemas import ScoreRequest
from service.settings import Settings
from service.truth_tables import truth_values


@dataclass
class ValidRequest:
    space: SearchSpace
    archs: list[Arch]
    estimators: list[str]
    protocol: dict
    protocol_hash: str
    truth: str | None


async def validate(request: ScoreRequest, settings: Settings, redis: Redis) -> ValidRequest:
    """Every problem of the request at once, as 422 details naming the field; nothing is stored."""
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
    supernet_sha256 = None
    if any(is_one_shot(n) for n in request.estimators):
        try:
            checkpoint = await run_in_threadpool(resolve, settings.supernet_path, request.protocol.oneshot.supernet)
            supernet_sha256 = checkpoint["sha256"]
        except CheckpointError as exc:
            details.append(("protocol.oneshot.supernet", str(exc)))
    archs: list[Arch] = []
    for i, encoding in enumerate(request.archs):
        try:
            archs.append(space.parse(encoding))
        except ValueError as exc:
            details.append((f"archs[{i}]", str(exc)))
    details += _protocol_problems(request, settings) + _work_problems(request, space, settings)
    truth = request.truth_column(space)
    if truth is not None and not await truth_exists(redis, space, truth):
        details.append(("truth", f"no ground-truth column {truth!r} for {space.name}"))
    if details:
        message = "invalid request"
        if any(field.startswith("estimators") for field, _ in details):
            message += f"; available estimators: {', '.join(ESTIMATORS)}"
        raise ApiError(422, message, details)
    protocol = request.protocol.to_protocol(data_root=settings.cifar_root, supernet_sha256=supernet_sha256)
    return ValidRequest(
        space, archs, list(dict.fromkeys(request.estimators)), protocol.model_dump(), protocol.hash(), truth
    )


def _work_problems(request: ScoreRequest, space: SearchSpace, settings: Settings) -> list[tuple[str, str]]:
    """A bound on the work one request may enqueue: architectures x estimators x images each (params
    and flops, answered by the API itself, do not count)."""
    names = set(request.estimators) - set(analytic_names(space, list(request.estimators)))
    images = request.protocol.batch_size * request.protocol.num_batches
    work = len(request.archs) * len(names) * images
    if work <= settings.max_work_per_request:
        return []
    return [("archs", f"{len(request.archs)} architectures x {len(names)} estimators x {images} images = "
             f"{work:,} exceeds this server's bound of {settings.max_work_per_request:,} per request; split it")]


def _protocol_problems(request: ScoreRequest, settings: Settings) -> list[tuple[str, str]]:
    """What the workers could not run: a dataset this server has no data for, or more images per
    architecture than the dataset holds."""
    available = training_images_available(settings.cifar_root)
    p = request.protocol
    if p.dataset not in available:
        names = ", ".join(available) or "none"
        return [("protocol.dataset", f"{p.dataset} is not configured on this server (available: {names})")]
    needed = p.batch_size * p.num_batches
    if needed > available[p.dataset]:
        return [("protocol.batch_size", f"batch_size x num_batches = {needed} exceeds the "
                 f"{available[p.dataset]} training images of {p.dataset} on this server")]
    return []


async def truth_exists(redis: Redis, space: SearchSpace, name: str) -> bool:
    return name in space.ground_truth_columns or bool(await redis.exists(store.truth_key(space.name, name)))


def _score_keys(v: ValidRequest) -> dict[str, str]:
    return {n: store.score_key(v.space.name, v.protocol_hash, n, ESTIMATORS[n].version) for n in v.estimators}


async def create_job(v: ValidRequest, settings: Settings, redis: Redis, send_chunk) -> dict:
    """Store the job and enqueue a task per chunk of classes that the cache does not hold yet."""
    space = v.space
    canonical = [space.canonical_key(a) for a in v.archs]
    unique = list(dict.fromkeys(canonical))
    analytic = analytic_names(space, v.estimators)
    keys = {n: k for n, k in _score_keys(v).items() if n not in analytic}
    cached_rows = []
    if keys:
        pipe = redis.pipeline()
        for key in keys.values():
            pipe.hmget(key, unique)
        cached_rows = await pipe.execute()
    missing = [c for j, c in enumerate(unique) if any(row[j] is None for row in cached_rows)]
    representative = {}
    for arch, c in zip(v.archs, canonical):
        representative.setdefault(c, space.to_string(space.representative(arch)))
    chunks = [missing[i : i + settings.chunk_size] for i in range(0, len(missing), settings.chunk_size)]
    job_id = uuid.uuid4().hex
    job = {
        "job_id": job_id,
        "space": space.name,
        "estimators": v.estimators,
        "protocol": v.protocol,
        "protocol_hash": v.protocol_hash,
        "truth": v.truth,
        "archs": [space.to_string(a) for a in v.archs],
        "canonical": canonical,
        "truth_keys": [space.truth_key(a) for a in v.archs],
        "chunk_sizes": [len(c) for c in chunks],
        "cached": len(unique) - len(missing),
        "created": time.time(),
    }
    pipe = redis.pipeline()
    # a job answered entirely from the cache is kept only briefly: it is there for GET /v1/jobs/{id}
    ttl = settings.job_ttl_seconds if chunks else min(settings.job_ttl_seconds, 3600)
    pipe.set(store.job_key(job_id), store.encode(job), ex=ttl)
    pipe.hset(store.members_key(space.name, v.protocol_hash), mapping=dict(zip(job["archs"], canonical)))
    pipe.hset(store.protocols_key(space.name), v.protocol_hash, store.encode(v.protocol))
    _, new_members, _ = await pipe.execute()
    if new_members:  # architectures joined the ranking population (cached or analytic scores): stats are stale
        await redis.incr(store.generation_key(space.name, v.protocol_hash))
    if chunks:
        await run_in_threadpool(
            lambda: [
                send_chunk(job_id, i, space.name, v.protocol, list(keys), [representative[c] for c in chunk])
                for i, chunk in enumerate(chunks)
            ]
        )
    return job


async def load_job(redis: Redis, job_id: str) -> dict:
    job = store.decode(await redis.get(store.job_key(job_id)))
    if job is None:
        raise ApiError(404, f"no job {job_id!r} (unknown or expired)")
    return job


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
        if done >= total:
            return
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)


async def render_job(redis: Redis, job: dict, rankings: dict | None) -> dict:
    done, total = await job_progress(redis, job)
    status = "done" if done >= total else ("running" if done else "queued")
    body = {
        "job_id": job["job_id"],
        "kind": "scores",
        "status": status,
        "progress": {"done": done, "total": total},
        "space": job["space"],
        "estimators": job["estimators"],
        "protocol": job["protocol"],
        "protocol_hash": job["protocol_hash"],
        "truth": job["truth"],
        "cached": job["cached"],
        "results": None,
        "rankings": rankings,
    }
    if status == "done":
        body["results"] = await _results(redis, job)
    return body


async def _results(redis: Redis, job: dict) -> list[dict]:
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
    by_class = {}
    for j, c in enumerate(unique):
        cells = {n: store.decode(row[j]) for n, row in zip(keys, rows)}
        by_class[c] = (cells, errors[j])
    truth = await truth_values(redis, space, job["truth"], job["truth_keys"]) if job["truth"] else {}
    results = []
    for i, (arch, c, truth_key) in enumerate(zip(job["archs"], job["canonical"], job["truth_keys"])):
        cells, error = by_class[c]
        scores = {n: (cell or {}).get("value") for n, cell in cells.items()}
        scores.update(analytic_scores(space, arch, analytic, job["protocol"]))
        results.append(
            {
                "index": i,
                "arch": arch,
                "canonical_key": c,
                "scores": {n: scores[n] for n in job["estimators"]},
                "reasons": {n: cell["reason"] for n, cell in cells.items() if cell and cell.get("reason")},
                "ground_truth": truth.get(truth_key),
                "error": error,
            }
        )
    return results
