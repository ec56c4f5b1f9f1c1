"""The studies resource: POST /v1/studies has every protocol a study reads scored (from the cache, the
rest enqueued like POST /v1/scores), GET /v1/studies/{id} runs the study once those scores exist and
keeps its numbers and figures in Redis, GET .../figures/{name}.png serves a figure."""

from __future__ import annotations

import base64
import dataclasses
import io
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.estimators.analysis import StudyContext, StudyInputError, get_study, list_studies
from archscore.estimators.analysis.run import run_study, with_checkpoints
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces.base import get_space
from archscore.service import jobs, store
from archscore.service.deps import (
    Caller,
    CallerDep,
    RedisDep,
    SettingsDep,
    celery_app,
    checked_wait,
    chunk_sender,
    require_api_key,
)
from archscore.service.errors import ERRORS, ApiError
from archscore.service.schemas import StudyRequest
from archscore.service.settings import Settings
from archscore.service.truth_tables import shown_name

router = APIRouter(prefix="/v1/studies", dependencies=[Depends(require_api_key)], responses=ERRORS, tags=["studies"])
StudyId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the id returned by POST /v1/studies")]
MIN_ARCHS = 4


@router.get("", summary="The studies: name and what each measures")
async def get_studies() -> list[dict]:
    return [{"name": s.name, "description": s.description} for s in list_studies()]


@router.post("", status_code=202, summary="Run a study on architectures with ground truth")
async def post_study(body: StudyRequest, redis: RedisDep, settings: SettingsDep, caller: CallerDep) -> dict:
    try:
        study = get_study(body.study)
    except KeyError as exc:
        raise ApiError(422, "unknown study", [("study", exc.args[0])]) from None
    valid = await jobs.validate(body, settings, redis, caller.owner)
    missing = study.missing_capabilities(valid.space)
    if missing:
        raise ApiError(422, "the study does not apply to this space", [("study", f"{study.name} needs a space with "
                       f"{', '.join(missing)}; {valid.space.name} has none")])
    if valid.truth is None:
        raise ApiError(422, "a study needs ground truth", [("truth", f"{valid.space.name} has no built-in "
                                                            "ground truth; upload a table and name it")])
    options = body.options.model_dump()
    if study.architectures is not None:
        valid = dataclasses.replace(valid, archs=study.architectures(valid.space, valid.archs, options))
        if len(valid.archs) > settings.max_archs_per_request:
            raise ApiError(422, "too many architectures", [("options.members", f"{study.name} would score "
                           f"{len(valid.archs)}, at most {settings.max_archs_per_request} per request")])

    if len(valid.archs) < MIN_ARCHS:
        raise ApiError(422, "too few architectures", [("archs", f"at least {MIN_ARCHS}, got {len(valid.archs)}"
                       + (f" ({study.name} scores classes of at least two members)" if study.architectures else ""))])
    try:
        options = await run_in_threadpool(with_checkpoints, study, Protocol(**valid.protocol), options,
                                          settings.supernet_path, valid.space.name)
        protocols = study.protocols(Protocol(**valid.protocol), options)
    except StudyInputError as exc:
        raise ApiError(422, "the study cannot run on this request", [(exc.field, exc.reason)]) from None
    # every protocol the study derives passes the checks of a score request, and all of them together
    # count against the same bound
    field = "options.members" if study.architectures is not None else "archs"
    problems = [(name, f"{reason} (the study's protocol {i + 1} of {len(protocols)}, derived from its options)")
                for i, p in enumerate(protocols) for name, reason in jobs.data_problems(p, settings)]
    problems += jobs.work_problems(valid.estimators, protocols, valid.space, settings, len(valid.archs), field)
    if problems:
        raise ApiError(422, "the study asks for more than this server runs", problems)
    scoring = []
    for protocol in protocols:
        variant = dataclasses.replace(valid, protocol=protocol.model_dump(), protocol_hash=protocol.hash())
        scoring.append(await _scoring_job(variant, settings, redis, caller))
    record = {"study_id": uuid.uuid4().hex, "owner": caller.owner, "study": study.name, "space": valid.space.name,
              "estimators": valid.estimators, "truth": valid.truth, "options": options,
              "protocol": valid.protocol, "jobs": scoring, "created": time.time(), "result": None}
    pipe = redis.pipeline()
    # a lifetime from the start (renewed by every read): a study nobody reads again does not stay forever
    pipe.set(store.study_key(record["study_id"]), store.encode(record), ex=settings.job_ttl_seconds)
    pipe.zadd(store.recent_key("studies"), {record["study_id"]: record["created"]})
    pipe.zremrangebyrank(store.recent_key("studies"), 0, -store.RECENT_KEPT - 1)
    pipe.expire(store.recent_key("studies"), settings.job_ttl_seconds)
    await pipe.execute()
    return await _render(redis, settings, record)


@router.get("/runs", summary="The most recent studies, newest first, with their status and figures")
async def get_study_runs(
    redis: RedisDep, settings: SettingsDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[dict]:
    runs = []
    for study_id in await redis.zrevrange(store.recent_key("studies"), 0, -1):
        if len(runs) >= limit:
            break
        record = store.decode(await redis.get(store.study_key(study_id)))
        if record is not None and caller.may_see(record.get("owner")):
            body = await _render(redis, settings, record)
            runs.append({k: body[k] for k in ("study_id", "study", "space", "truth", "status", "progress")}
                        | {"figures": body.get("figures", {})})
    return runs


@router.get("/{study_id}", summary="A study: progress, then its numbers and links to its figures")
async def get_study_result(
    study_id: StudyId, redis: RedisDep, settings: SettingsDep, caller: CallerDep,
    wait: Annotated[float, Query(ge=0, description="seconds to wait for the scores (at most the server's bound)")] = 0.0,
) -> dict:
    wait = checked_wait(wait, settings)
    record = await _load(redis, study_id, caller)
    if wait and record["result"] is None and not record.get("cancelled"):
        deadline = time.monotonic() + wait
        for job in record["jobs"]:
            await jobs.wait_for_job(redis, job, max(0.0, deadline - time.monotonic()))
    return await _render(redis, settings, record)


@router.delete("/{study_id}", summary="Cancel a study: its scoring jobs are cancelled and it is not run",
               description="409 when the study has finished.")
async def delete_study(study_id: StudyId, redis: RedisDep, settings: SettingsDep, caller: CallerDep) -> dict:
    record = await _load(redis, study_id, caller)
    if record["result"] is not None:
        raise ApiError(409, "the study has finished", [("study_id", "only a queued or running study can be "
                                                                    "cancelled")])
    celery = await celery_app(settings)
    for job in record["jobs"]:
        done, total = await jobs.job_progress(redis, job)
        if done < total and not await redis.exists(store.job_cancelled_key(job["job_id"])):
            await jobs.cancel_job(redis, job, settings, lambda ids: celery.control.revoke(ids))
    record["cancelled"] = True
    await redis.set(store.study_key(study_id), store.encode(record), ex=settings.job_ttl_seconds)
    return await _render(redis, settings, record)


@router.get("/{study_id}/figures/{name}.png", summary="A figure of a finished study",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def get_study_figure(
    study_id: StudyId, name: Annotated[str, Path(pattern="^[A-Za-z0-9_-]{1,100}$")], redis: RedisDep,
    caller: CallerDep,
) -> Response:
    await _load(redis, study_id, caller)
    png = await redis.hget(store.study_figures_key(study_id), name)
    if png is None:
        raise ApiError(404, f"no figure {name!r} for study {study_id!r} (unknown, unfinished or expired)")
    return Response(base64.b64decode(png), media_type="image/png")


async def _scoring_job(valid: jobs.ValidRequest, settings: Settings, redis: Redis, caller: Caller) -> dict:
    """The job that scores the request under one protocol: answered from the cache when it can be."""
    plan = jobs.plan(valid, caller.owner)
    missing = await jobs.answer_from_cache(plan, settings, redis)
    if isinstance(missing, dict):
        return plan.job  # every score cached: nothing to wait for
    await jobs.admit_job(redis, settings, caller, plan.job["job_id"])
    return await jobs.create_job(plan, missing, settings, redis, chunk_sender(await celery_app(settings)))


async def _load(redis: Redis, study_id: str, caller: Caller) -> dict:
    """The study's record; 404 when it is unknown, expired, or another key's."""
    record = store.decode(await redis.get(store.study_key(study_id)))
    if record is None or not caller.may_see(record.get("owner")):
        raise ApiError(404, f"no study {study_id!r} (unknown or expired)")
    return record


async def _render(redis: Redis, settings: Settings, record: dict) -> dict:
    done = total = 0
    cancelled = bool(record.get("cancelled"))
    for job in record["jobs"]:
        d, t = await jobs.job_progress(redis, job)
        done, total = done + d, total + t
        cancelled = cancelled or (d < t and bool(await redis.exists(store.job_cancelled_key(job["job_id"]))))
    if record["result"] is None and done >= total and not cancelled:
        await _finish(redis, settings, record)
    else:  # renew its lifetime: it is being read
        await redis.expire(store.study_key(record["study_id"]), settings.job_ttl_seconds)
    body = {key: record[key] for key in ("study_id", "study", "space", "estimators", "options", "protocol")}
    body["truth"] = shown_name(record["truth"])
    status = "done" if record["result"] is not None else "cancelled" if cancelled else "running" if done else "queued"
    body.update(status=status,
                progress={"done": done, "total": total}, jobs=[j["job_id"] for j in record["jobs"]],
                result=record["result"])
    if record["result"] is not None:
        body["figures"] = {name: f"/v1/studies/{record['study_id']}/figures/{name}.png"
                           for name in record["result"]["figures"]}
    return body


async def _finish(redis: Redis, settings: Settings, record: dict) -> None:
    """Run the study on the scores of its jobs, keep its numbers and figures (then the TTL applies)."""
    space = get_space(record["space"])
    by_protocol, keep, truth, archs = {}, [], [], []
    for n, job in enumerate(record["jobs"]):
        results = await jobs.job_results(redis, job)
        if n == 0:  # every job holds the same architectures and ground truth, in request order
            keep = [i for i, r in enumerate(results) if r["ground_truth"] is not None]
            truth = [results[i]["ground_truth"] for i in keep]
            archs = [space.parse(results[i]["arch"]) for i in keep]
        by_protocol[job["protocol_hash"]] = {e: [results[i]["scores"][e] for i in keep] for e in record["estimators"]}
    study = get_study(record["study"])
    ctx = StudyContext(space, archs, truth, record["estimators"], Protocol(**record["protocol"]),
                       lambda protocol: by_protocol[protocol.hash()], record["options"])
    if len(archs) < MIN_ARCHS:
        result = {"error": f"{len(archs)} of the architectures have ground truth in {record['truth']!r}; "
                           f"at least {MIN_ARCHS} needed", "figures": []}
        figures: dict[str, str] = {}
    else:
        result, figures = await run_in_threadpool(_run, study, ctx, record["truth"])
    record["result"] = result
    pipe = redis.pipeline()
    pipe.set(store.study_key(record["study_id"]), store.encode(record), ex=settings.job_ttl_seconds)
    if figures:
        pipe.hset(store.study_figures_key(record["study_id"]), mapping=figures)
        pipe.expire(store.study_figures_key(record["study_id"]), settings.job_ttl_seconds)
    await pipe.execute()


def _run(study, ctx: StudyContext, truth: str) -> tuple[dict, dict[str, str]]:
    from archscore.estimators.analysis.plots import save

    try:
        result = run_study(study, ctx, None, truth)
    except ValueError as exc:  # the study does not apply (e.g. a space without operations)
        return {"error": str(exc), "figures": []}, {}
    figures = {}
    for name, fig in study.figures(result["result"]).items():
        buffer = io.BytesIO()
        save(fig, buffer)
        figures[name] = base64.b64encode(buffer.getvalue()).decode()  # the API's Redis client decodes text
    result["figures"] = list(figures)
    return result, figures
