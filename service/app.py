"""The HTTP API. Never imports torch: validation and canonicalisation use the torch-free library parts."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from archscore.estimators.spaces import get_space, list_spaces
from archscore.estimators.truth import TruthError, parse_table
from archscore.estimators.catalog import ESTIMATORS
from archscore.service import dashboard, fast_path, jobs, store, studies, supernets
from archscore.service.deps import (
    CallerDep,
    RedisDep,
    SettingsDep,
    average_sender,
    celery_app,
    checked_wait,
    chunk_sender,
    redis_for,
    require_api_key,
    training_sender,
)
from archscore.service.errors import ERRORS, ApiError, install_error_handlers
from archscore.service.settings import get_settings
from archscore.service.truth_tables import stored_name
from archscore.service.middleware import LimitsAndMetrics
from archscore.service.rankings import rankings, select
from archscore.service.schemas import (
    EXAMPLE_ARCH,
    AverageRequest,
    ErrorResponse,
    Job,
    ScoreRequest,
    TrainingJob,
    TRUTH_NAME,
    TrainRequest,
)

TRUTH_NAME_PATTERN = re.compile(TRUTH_NAME)
MAX_OFFSET = 1_000_000  # far past any real page, well inside Redis's 64-bit indices


v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERRORS)


@v1.post(
    "/scores",
    response_model=Job,
    status_code=202,
    summary="Score architectures",
    description="Validates and canonicalises every encoding, answers what the cache holds, enqueues the rest "
    "in chunks and returns the job (202). With `wait` (seconds, at most the server's ARCHSCORE_MAX_WAIT_SECONDS, "
    "default 60: more is a 422) the response waits for the "
    "job and returns 200 with the results when it finishes in time. Isomorphic duplicates are scored once.",
    responses={200: {"model": Job, "description": "finished within `wait`"}},
)
async def post_scores(
    body: ScoreRequest,
    caller: CallerDep,
    wait: Annotated[float, Query(ge=0, description="seconds to wait for the result (at most the server's bound)")] = 0.0,
) -> JSONResponse:
    # settings and the Redis client looked up here rather than as dependencies: FastAPI spends tens of
    # microseconds per dependency, a measurable share of the cached path (benchmarks/cached_path.py)
    settings = get_settings()
    wait = checked_wait(wait, settings)
    redis = redis_for(settings)
    plan, answer = await jobs.plan_and_answer_from_cache(body, settings, redis, caller.owner)
    if isinstance(answer, dict):  # every score cached (usually answered before routing: service/fast_path.py)
        return JSONResponse(answer)
    await jobs.admit_job(redis, settings, caller, plan.job["job_id"])
    send = chunk_sender(await celery_app(settings))  # only here: the cached path needs no broker
    job = await jobs.create_job(plan, answer, settings, redis, send)
    if wait:
        await jobs.wait_for_job(redis, job, wait)
    valid = plan.request
    stats = None
    if valid.truth:
        stats = select(await rankings(redis, valid.space, valid.protocol_hash, valid.truth), valid.estimators)
    rendered = await jobs.render_job(redis, job, stats)
    return JSONResponse(rendered, status_code=200 if rendered["status"] == "done" else 202)


@v1.get(
    "/jobs/{job_id}",
    response_model=Job | TrainingJob,
    summary="Job status, progress and results",
    description="A scoring job (`kind` scores) or a supernet training job (`kind` supernet_training).",
)
async def get_job(
    job_id: Annotated[
        str, Path(pattern="^[0-9a-f]{32}$", description="the job id returned by POST /v1/scores or /v1/supernets")
    ],
    redis: RedisDep,
    settings: SettingsDep,
    caller: CallerDep,
    wait: Annotated[float, Query(ge=0, description="long-poll: seconds to wait for the job to finish (at most the server's bound)")] = 0.0,
) -> dict:
    wait = checked_wait(wait, settings)
    job = await jobs.load_job(redis, job_id, caller)
    if job.get("kind") in ("supernet_training", "supernet_average"):
        if wait:
            await supernets.wait_for_training(redis, job, wait)
        return await supernets.render_training_job(redis, job)
    if wait:
        await jobs.wait_for_job(redis, job, wait)
    space = get_space(job["space"])
    stats = None
    if job["truth"]:
        stats = select(await rankings(redis, space, job["protocol_hash"], job["truth"]), job["estimators"])
    return await jobs.render_job(redis, job, stats)


@v1.get("/jobs", summary="The most recent scoring jobs that went to the workers, newest first, with progress",
        description="The caller's own jobs (every key's for an admin key).")
async def get_jobs(redis: RedisDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict]:
    listed = []
    for job_id in await redis.zrevrange(store.recent_key("jobs"), 0, -1):
        if len(listed) >= limit:
            break
        job = store.decode(await redis.get(store.job_key(job_id)))
        if job is not None and caller.may_see(job.get("owner")):
            done, total = await jobs.job_progress(redis, job)
            status = "done" if done >= total else ("running" if done else "queued")
            if await redis.exists(store.job_cancelled_key(job_id)):
                status = "cancelled"
            listed.append({"job_id": job_id, "space": job["space"], "estimators": job["estimators"],
                           "status": status, "progress": {"done": done, "total": total}, "created": job["created"]})
    return listed


@v1.delete(
    "/jobs/{job_id}",
    response_model=Job | TrainingJob,
    summary="Cancel a job",
    description="A scoring job: its queued chunks are revoked and a running chunk stops after its current "
    "architecture; the job reports `cancelled`, with the results scored so far. A supernet training: it stops at "
    "its next step (the last checkpoint written stays) and its checkpoint name is free at once. 409 when the job "
    "has already finished.",
)
async def delete_job(
    job_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the job id")],
    redis: RedisDep,
    settings: SettingsDep,
    caller: CallerDep,
    celery=Depends(celery_app),
) -> dict:
    job = await jobs.load_job(redis, job_id, caller)
    revoke = lambda ids: celery.control.revoke(ids)  # noqa: E731 - a broadcast: live workers drop them
    if job.get("kind") in ("supernet_training", "supernet_average"):
        await supernets.cancel_training(redis, job, settings, revoke)
        return await supernets.render_training_job(redis, job)
    await jobs.cancel_job(redis, job, settings, revoke)
    return await jobs.render_job(redis, job, None)


@v1.post(
    "/supernets",
    response_model=TrainingJob,
    status_code=202,
    summary="Train a supernet checkpoint",
    description="Starts a training job on a training worker (queue `training`) and returns it (202); follow it "
    "with GET /v1/jobs/{job_id} (epoch, step, loss, seconds left). The checkpoint is written after every epoch "
    "under the given name and can be scored with as soon as it exists (`protocol.oneshot.supernet`).",
)
async def post_supernets(
    body: TrainRequest, redis: RedisDep, settings: SettingsDep, caller: CallerDep, send=Depends(training_sender)
) -> dict:
    job = await supernets.start_training(body, settings, redis, send, caller)
    return await supernets.render_training_job(redis, job)


@v1.post(
    "/supernets/average",
    response_model=TrainingJob,
    status_code=202,
    summary="Average supernet checkpoints",
    description="Averages the weights of checkpoints of the same network (named ones, and/or the snapshots a "
    "checkpoint kept of its last epochs) into a new checkpoint, on the training worker; follow the job with "
    "GET /v1/jobs/{job_id}.",
)
async def post_supernet_average(
    body: AverageRequest, redis: RedisDep, settings: SettingsDep, caller: CallerDep, send=Depends(average_sender)
) -> dict:
    job = await supernets.start_average(body, settings, redis, send, caller)
    return await supernets.render_training_job(redis, job)


@v1.get("/supernets", summary="Supernet checkpoints available for one-shot scoring, newest first")
async def get_supernets(settings: SettingsDep) -> list[dict]:
    return await supernets.list_supernets(settings)


@v1.get(
    "/rankings/{space}",
    summary="Ranking-quality statistics of every estimator, per protocol, most recently used protocol first",
    description="Paginated with `offset` and `limit`; `protocol_hash` selects one protocol. Protocols unused "
    "for the cache lifetime (ARCHSCORE_CACHE_TTL_SECONDS) are forgotten with their scores.",
)
async def get_rankings(
    space: str,
    redis: RedisDep,
    caller: CallerDep,
    truth: Annotated[str | None, Query(description="ground-truth column; default: the space's first")] = None,
    protocol_hash: Annotated[str | None, Query(pattern="^[0-9a-f]{16}$", description="one protocol")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="protocols to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="protocols per page")] = 20,
) -> dict:
    sp = _space(space)
    truth = truth or (sp.ground_truth_columns[0] if sp.ground_truth_columns else None)
    stored = None if truth is None else stored_name(sp, truth, caller.owner)
    if stored is None or not await jobs.truth_exists(redis, sp, stored):
        raise ApiError(422, "unknown ground truth", [("truth", f"no ground-truth column {truth!r} for {sp.name}")])
    index = store.protocols_key(sp.name)
    if protocol_hash is not None:
        if await redis.zscore(index, protocol_hash) is None:
            raise ApiError(404, f"no scores under protocol {protocol_hash!r}")
        total, page = 1, [protocol_hash]
    else:
        total = await redis.zcard(index)
        page = await redis.zrevrange(index, offset, offset + limit - 1)
    out = []
    protocols = await redis.mget([store.protocol_key(sp.name, h) for h in page]) if page else []
    for phash, protocol in zip(page, protocols):
        if protocol is None:  # expired or evicted with its scores
            continue
        report = await rankings(redis, sp, phash, stored)
        out.append({**report, "protocol": store.decode(protocol)})
    next_offset = offset + limit if protocol_hash is None and offset + limit < total else None
    return {"space": sp.name, "truth": truth, "total": total, "offset": offset, "next_offset": next_offset,
            "rankings": out}


@v1.get("/estimators", summary="Estimators: name, kind, direction, needs data, version")
async def get_estimators() -> list[dict]:
    return [e.to_dict() for e in ESTIMATORS.values()]


@v1.get("/spaces", summary="Search spaces: encodings accepted, size, ground-truth columns")
async def get_spaces() -> list[dict]:
    return [get_space(n).describe() for n in list_spaces()]


def _space(name: str):
    try:
        return get_space(name)
    except KeyError as exc:
        raise ApiError(404, exc.args[0]) from None


@v1.get("/spaces/{space}/canonical", summary="Validate an encoding and return its string form and canonical key")
async def get_canonical(
    space: str,
    arch: Annotated[str, Query(description="encoding; JSON lists and integers are decoded", examples=[EXAMPLE_ARCH])],
) -> dict:
    from archscore.estimators.spaces.base import decode_text_encoding

    sp = _space(space)
    try:
        parsed = sp.parse(decode_text_encoding(arch))
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, "invalid architecture", [("arch", str(exc) or "too deeply nested")]) from None
    return {
        "space": sp.name,
        "arch": sp.to_string(parsed),
        "canonical_key": sp.canonical_key(parsed),
        "representative": sp.to_string(sp.representative(parsed)),
    }


@v1.put(
    "/truth/{space}/{name}",
    summary="Upload a ground-truth table",
    description="Body: CSV (`arch,value`) or JSON (`{encoding: value}` or `[{\"arch\", \"value\"}]`), or the "
    "published NDS records (a list of records holding `net`, or `{\"top\": [...], \"mid\": [...]}`; value = 100 - "
    "the chosen top-1 error). Records of another space (an NDS record of the other block type) are left out and "
    "counted in `skipped`. Replaces a table of the same name; built-in column names are reserved. The body is "
    "read as text whatever its Content-Type (text/plain, text/csv or application/json).",
    openapi_extra={"requestBody": {"required": True, "description": "the table, CSV or JSON", "content": {
        kind: {"schema": {"type": "string"}} for kind in ("text/plain", "text/csv", "application/json")}}},
)
async def put_truth(
    space: str,
    name: str,
    request: Request,
    caller: CallerDep,
    redis: RedisDep,
    settings: SettingsDep,
    column: Annotated[
        str | None,
        Query(max_length=64, description="CSV: the value column (default: the only one besides arch). NDS records: "
              "min_test_top1 (default: the lowest test error) or test_ep_top1 (the last epoch's, NASWOT's choice)"),
    ] = None,
) -> dict:
    sp = _space(space)
    try:
        content = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid ground-truth table", [("body", "not UTF-8 text")]) from None
    if not content.strip():
        raise ApiError(422, "invalid ground-truth table", [("body", "empty: send the table as CSV or JSON")])
    if not TRUTH_NAME_PATTERN.fullmatch(name):  # fullmatch: "$" alone would accept a trailing newline
        raise ApiError(422, "invalid table name", [("name", "use 1-64 letters, digits, '_' or '-'")])
    if name in sp.ground_truth_columns:
        raise ApiError(422, "reserved table name", [("name", f"{name!r} is a built-in column of {sp.name}")])
    try:
        table = await run_in_threadpool(parse_table, content, sp.name, column, None, "body")
    except TruthError as exc:
        raise ApiError(422, "invalid ground-truth table", [("body", str(exc))]) from None
    if len(table) > settings.max_truth_rows:
        raise ApiError(413, "table too large", [("body", f"{len(table)} rows, at most {settings.max_truth_rows}")])
    stored = stored_name(sp, name, caller.owner)
    await _check_truth_room(redis, settings, caller, store.truth_table_id(sp.name, stored), len(table))
    key = store.truth_key(sp.name, stored)
    pipe = redis.pipeline()
    pipe.delete(key)
    pipe.hset(key, mapping=table.values)  # truth key -> value
    pipe.hset(store.truth_tables_key(), store.truth_table_id(sp.name, stored), len(table))
    await _void_rankings(redis, pipe, sp.name, stored)
    await pipe.execute()
    return {"space": sp.name, "name": name, "rows": len(table), "column": table.column,
            "skipped": [{"count": n, "reason": reason} for reason, n in table.skipped.items()]}


@v1.delete(
    "/truth/{space}/{name}",
    summary="Delete an uploaded ground-truth table",
    description="Frees its room under ARCHSCORE_MAX_TRUTH_TABLES and ARCHSCORE_MAX_TRUTH_ROWS_TOTAL; the "
    "rankings computed against it go with it. Built-in columns cannot be deleted.",
)
async def delete_truth(space: str, name: str, caller: CallerDep, redis: RedisDep) -> dict:
    sp = _space(space)
    if name in sp.ground_truth_columns:
        raise ApiError(422, "reserved table name", [("name", f"{name!r} is a built-in column of {sp.name}")])
    stored = stored_name(sp, name, caller.owner)
    table_id = store.truth_table_id(sp.name, stored)
    rows = await redis.hget(store.truth_tables_key(), table_id)
    if rows is None and not await redis.exists(store.truth_key(sp.name, stored)):
        raise ApiError(404, f"no uploaded ground-truth table {name!r} for {sp.name}")
    pipe = redis.pipeline()
    pipe.delete(store.truth_key(sp.name, stored))
    pipe.hdel(store.truth_tables_key(), table_id)
    await _void_rankings(redis, pipe, sp.name, stored)
    await pipe.execute()
    return {"space": sp.name, "name": name, "deleted": True, "rows": int(rows or 0)}


async def _check_truth_room(redis, settings, caller, table_id: str, rows: int) -> None:
    """507 naming the bound when storing ``rows`` rows as ``table_id`` (replacing a table of that name)
    would pass the number of tables or the rows of all tables kept, or the caller's key's tables."""
    tables = {k: int(v) for k, v in (await redis.hgetall(store.truth_tables_key())).items()}
    others = {k: v for k, v in tables.items() if k != table_id}
    own = [k for k in others if caller.owner and f"/{caller.owner}/" in k]
    if caller.owner and len(own) + 1 > settings.max_truth_tables_per_key:
        raise ApiError(507, "no room for another ground-truth table of this key", [(
            "name", f"this key keeps {len(own)} uploaded tables, at most {settings.max_truth_tables_per_key} "
            "(ARCHSCORE_MAX_TRUTH_TABLES_PER_KEY): delete one with DELETE /v1/truth/{space}/{name}")])
    if len(others) + 1 > settings.max_truth_tables:
        raise ApiError(507, "no room for another ground-truth table", [(
            "name", f"{len(others)} uploaded tables are kept, at most {settings.max_truth_tables} "
            "(ARCHSCORE_MAX_TRUTH_TABLES): delete one with DELETE /v1/truth/{space}/{name}")])
    if sum(others.values()) + rows > settings.max_truth_rows_total:
        raise ApiError(507, "no room for the table's rows", [(
            "body", f"{rows} rows on top of the {sum(others.values())} kept pass the bound of "
            f"{settings.max_truth_rows_total} rows of all uploaded tables (ARCHSCORE_MAX_TRUTH_ROWS_TOTAL)")])


async def _void_rankings(redis, pipe, space: str, truth: str) -> None:
    """Queue on ``pipe`` the removal of every protocol's statistics against ``truth``; bumping the
    generation also voids a recomputation running right now on the old table."""
    for protocol_hash in await redis.zrange(store.protocols_key(space), 0, -1):
        pipe.delete(store.rankings_key(space, protocol_hash, truth))
        pipe.incr(store.generation_key(space, protocol_hash))


_worker_census = {"at": 0.0, "queues": {}}
WORKER_CENSUS_TTL = 2.0  # seconds a readiness answer is reused: the broadcast blocks a thread for up to 1 s
QUEUES = {"celery": "scoring worker", "training": "training worker"}


EVICTING_QUEUES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")  # policies that may evict queues and jobs


async def _memory_bound(redis) -> dict:
    """Redis's memory bound as the service needs it: a maxmemory, and a policy that evicts only keys with a
    lifetime (volatile-*) or nothing (noeviction: a full Redis then answers 507). Read from INFO, which
    managed Redis services allow where CONFIG is refused; never changed here."""
    info = await redis.info("memory")
    maxmemory, policy = int(info.get("maxmemory", 0)), str(info.get("maxmemory_policy", "noeviction"))
    reason = None
    if maxmemory == 0:
        reason = "maxmemory is 0: Redis may grow until the machine runs out of memory; set one"
    elif policy in EVICTING_QUEUES:
        reason = f"maxmemory-policy {policy} may evict queued work and unfinished jobs; use volatile-lru"
    return {"maxmemory": maxmemory, "policy": policy, "bounded": reason is None, "reason": reason}


async def _workers_by_queue(celery) -> dict[str, int]:
    """How many live workers consume each queue (a broadcast to every worker, answered within 1 s)."""
    now = time.monotonic()
    if now - _worker_census["at"] > WORKER_CENSUS_TTL or not any(_worker_census["queues"].values()):
        replies = await run_in_threadpool(lambda: celery.control.inspect(timeout=1.0).active_queues() or {})
        counts = dict.fromkeys(QUEUES, 0)
        for queues in replies.values():
            for queue in {q["name"] for q in queues} & set(QUEUES):
                counts[queue] += 1
        _worker_census.update(at=time.monotonic(), queues=counts)
    return _worker_census["queues"]


def create_app() -> FastAPI:
    app = FastAPI(
        title="archscore",
        version="0.1.0",
        description="Score neural architectures with efficient performance estimators and measure how well "
        "they rank (Kendall tau, Spearman, Pearson, P@topK, BR@K, WR@K).",
    )
    install_error_handlers(app)
    app.include_router(v1)
    app.include_router(studies.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard.data)
    scores_route = next(r for r in v1.routes if r.path == fast_path.PATH)
    app.add_middleware(fast_path.CachedScoresFastPath, route=scores_route)
    app.add_middleware(LimitsAndMetrics)  # added last: outermost, so limits and metrics cover the fast path

    @app.get("/healthz", summary="The API process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Ready when Redis and a scoring worker answer; `missing` lists every part that does not "
             "(without a training worker, supernet jobs wait in their queue)",
             responses={503: {"description": "not ready; the body says what is missing"}})
    async def readyz(redis: RedisDep, settings: SettingsDep) -> JSONResponse:
        checks = {"redis": False, "workers": 0, "queues": dict.fromkeys(QUEUES, 0), "redis_memory": None}
        try:
            checks["redis"] = bool(await redis.ping())
            checks["redis_memory"] = await _memory_bound(redis)
        except Exception:  # noqa: BLE001 - any failure means not ready
            pass
        if checks["redis"]:
            # the broadcast's broker connection may be one Redis dropped: a second try reconnects, so a Redis
            # that is back is never reported missing here while other routes answer
            for attempt in range(2):
                try:
                    checks["queues"] = await _workers_by_queue(await celery_app(settings))
                    break
                except Exception:  # noqa: BLE001 - reported as workers not answering
                    _worker_census["at"] = 0.0
        checks["workers"] = sum(checks["queues"].values())
        missing = [] if checks["redis"] else ["redis"]
        memory = checks["redis_memory"]
        unbounded = memory is not None and not memory["bounded"] and not settings.allow_unbounded_redis
        if unbounded:
            missing.append(f"redis memory bound ({memory['reason']})")
        missing += [f"{role} (queue {queue})" for queue, role in QUEUES.items() if not checks["queues"][queue]]
        # ready: scores can be served without filling the machine; training may wait for its worker
        ready = checks["redis"] and checks["queues"]["celery"] > 0 and not unbounded
        return JSONResponse({"ready": ready, **checks, "missing": missing}, status_code=200 if ready else 503)

    @app.get(
        "/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "text format 0.0.4"}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app()
