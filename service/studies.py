"""Studies over the API: a study has every protocol it reads scored (from the cache, the rest enqueued
like POST /v1/scores), runs once those scores exist, and keeps its numbers and figures in Redis."""

from __future__ import annotations

import base64
import io
import time
import uuid

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.records import StudyRecord
from archscore.contract.settings import Settings
from archscore.estimators.analysis import StudyContext, StudyInputError, get_study
from archscore.estimators.analysis.run import run_study, with_checkpoints
from archscore.estimators.catalog import is_predictor
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces.base import get_space
from archscore.service import jobs
from archscore.service.deps import Caller
from archscore.service.errors import ApiError
from archscore.service.schemas import StudyRequest
from archscore.service.scoring.enqueue import scoring_job
from archscore.service.scoring.results import job_results
from archscore.service.scoring.validate import data_problems, validate, work_problems
from archscore.service.truth_tables import shown_name

MIN_ARCHS = 4


async def start_study(body: StudyRequest, settings: Settings, redis: Redis, caller: Caller, celery) -> StudyRecord:
    """Check the study applies, derive its protocols, have each scored; the stored record."""
    try:
        study = get_study(body.study)
    except KeyError as exc:
        raise ApiError(422, "unknown study", [("study", exc.args[0])]) from None
    predictors = [f"estimators[{i}]" for i, name in enumerate(body.estimators) if is_predictor(name)]
    if predictors:
        why = "a study compares the catalog's estimators, not fitted predictors"
        raise ApiError(422, "invalid request", [(field, why) for field in predictors])
    valid = await validate(body, settings, redis, caller)
    missing = study.missing_capabilities(valid.space)
    if missing:
        raise ApiError(
            422,
            "the study does not apply to this space",
            [("study", f"{study.name} needs a space with {', '.join(missing)}; {valid.space.name} has none")],
        )
    if valid.truth is None:
        raise ApiError(
            422,
            "a study needs ground truth",
            [("truth", f"{valid.space.name} has no built-in ground truth; upload a table and name it")],
        )
    options = body.options.model_dump()
    if study.architectures is not None:
        valid = valid.with_archs(study.architectures(valid.space, [r.arch for r in valid.archs], options))
        if len(valid.archs) > settings.max_archs_per_request:
            raise ApiError(
                422,
                "too many architectures",
                [
                    (
                        "options.members",
                        f"{study.name} would score "
                        f"{len(valid.archs)}, at most {settings.max_archs_per_request} per request",
                    )
                ],
            )
    if len(valid.archs) < MIN_ARCHS:
        raise ApiError(
            422,
            "too few architectures",
            [
                (
                    "archs",
                    f"at least {MIN_ARCHS}, got {len(valid.archs)}"
                    + (f" ({study.name} scores classes of at least two members)" if study.architectures else ""),
                )
            ],
        )
    try:
        options = await run_in_threadpool(
            with_checkpoints,
            study,
            valid.protocol,
            options,
            settings.supernet_path,
            valid.space.name,
            caller.checkpoints,
        )
        protocols = study.protocols(valid.protocol, options)
    except StudyInputError as exc:
        raise ApiError(422, "the study cannot run on this request", [(exc.field, exc.reason)]) from None
    # every protocol the study derives passes the checks of a score request, and all of them together
    # count against the same bound
    name = "options.members" if study.architectures is not None else "archs"
    problems = [
        (field, f"{reason} (the study's protocol {i + 1} of {len(protocols)}, derived from its options)")
        for i, p in enumerate(protocols)
        for field, reason in data_problems(p, settings)
    ]
    problems += work_problems(valid.estimators, protocols, valid.space, settings, len(valid.archs), name)
    if problems:
        raise ApiError(422, "the study asks for more than this server runs", problems)
    scoring = [await scoring_job(valid.with_protocol(p), settings, redis, caller, celery) for p in protocols]
    record = StudyRecord(
        study_id=uuid.uuid4().hex,
        owner=caller.owner,
        study=study.name,
        space=valid.space.name,
        estimators=valid.estimators,
        truth=valid.truth,
        options=options,
        protocol=valid.protocol_fields,
        jobs=scoring,
        created=time.time(),
    )
    pipe = redis.pipeline()
    # a lifetime from the start (renewed by every read): a study nobody reads again does not stay forever
    pipe.set(store.study_key(record.study_id), store.encode_record(record), ex=settings.job_ttl_seconds)
    pipe.zadd(store.recent_key("studies"), {record.study_id: record.created})
    pipe.zremrangebyrank(store.recent_key("studies"), 0, -store.RECENT_KEPT - 1)
    pipe.expire(store.recent_key("studies"), settings.job_ttl_seconds)
    await pipe.execute()
    return record


async def load_study(redis: Redis, study_id: str, caller: Caller) -> StudyRecord:
    """The study's record; 404 when it is unknown, expired, or another key's."""
    record = store.decode_study(await redis.get(store.study_key(study_id)))
    if record is None or not caller.may_see(record.owner):
        raise ApiError(404, f"no study {study_id!r} (unknown or expired)")
    return record


async def recent_studies(redis: Redis, settings: Settings, caller: Caller, limit: int) -> list[dict]:
    runs: list[dict] = []
    for study_id in await redis.zrevrange(store.recent_key("studies"), 0, -1):
        if len(runs) >= limit:
            break
        record = store.decode_study(await redis.get(store.study_key(study_id)))
        if record is not None and caller.may_see(record.owner):
            body = await render_study(redis, settings, record)
            runs.append(
                {k: body[k] for k in ("study_id", "study", "space", "truth", "status", "progress")}
                | {"figures": body.get("figures", {})}
            )
    return runs


async def wait_for_study(redis: Redis, record: StudyRecord, seconds: float) -> None:
    if record.result is None and not record.cancelled:
        deadline = time.monotonic() + seconds
        for job in record.jobs:
            await jobs.wait_for_job(redis, job, max(0.0, deadline - time.monotonic()))


async def cancel_study(redis: Redis, settings: Settings, record: StudyRecord, revoke: jobs.Revoke) -> None:
    if record.result is not None:
        raise ApiError(409, "the study has finished", [("study_id", "only a queued or running study can be cancelled")])
    for job in record.jobs:
        done, total = await jobs.job_progress(redis, job)
        if done < total and not await redis.exists(store.job_cancelled_key(job.job_id)):
            await jobs.cancel_job(redis, job, settings, revoke)
    record.cancelled = True
    await redis.set(store.study_key(record.study_id), store.encode_record(record), ex=settings.job_ttl_seconds)


async def study_figure(redis: Redis, study_id: str, name: str) -> bytes:
    png = await redis.hget(store.study_figures_key(study_id), name)
    if png is None:
        raise ApiError(404, f"no figure {name!r} for study {study_id!r} (unknown, unfinished or expired)")
    return base64.b64decode(png)


async def render_study(redis: Redis, settings: Settings, record: StudyRecord) -> dict:
    """The study's body; a study whose scores are all in is run first."""
    done = total = 0
    cancelled = record.cancelled
    for job in record.jobs:
        d, t = await jobs.job_progress(redis, job)
        done, total = done + d, total + t
        cancelled = cancelled or (d < t and bool(await redis.exists(store.job_cancelled_key(job.job_id))))
    if record.result is None and done >= total and not cancelled:
        await _finish(redis, settings, record)
    else:  # renew its lifetime: it is being read
        await redis.expire(store.study_key(record.study_id), settings.job_ttl_seconds)
    body = record.model_dump(include={"study_id", "study", "space", "estimators", "options", "protocol"})
    body["truth"] = shown_name(record.truth)
    status = "done" if record.result is not None else "cancelled" if cancelled else "running" if done else "queued"
    body.update(
        status=status,
        progress={"done": done, "total": total},
        jobs=[j.job_id for j in record.jobs],
        result=record.result,
    )
    if record.result is not None:
        body["figures"] = {
            name: f"/v1/studies/{record.study_id}/figures/{name}.png" for name in record.result["figures"]
        }
    return body


async def _finish(redis: Redis, settings: Settings, record: StudyRecord) -> None:
    """Run the study on the scores of its jobs, keep its numbers and figures (then the TTL applies)."""
    space = get_space(record.space)
    by_protocol: dict[str, dict[str, list]] = {}
    keep: list[int] = []
    truth: list = []
    archs: list = []
    for n, job in enumerate(record.jobs):
        results = await job_results(redis, job)
        if n == 0:  # every job holds the same architectures and ground truth, in request order
            keep = [i for i, r in enumerate(results) if r["ground_truth"] is not None]
            truth = [results[i]["ground_truth"] for i in keep]
            archs = [space.parse(results[i]["arch"]) for i in keep]
        by_protocol[job.protocol_hash] = {e: [results[i]["scores"][e] for i in keep] for e in record.estimators}
    study = get_study(record.study)
    ctx = StudyContext(
        space,
        archs,
        truth,
        record.estimators,
        Protocol(**record.protocol),
        lambda protocol: by_protocol[protocol.hash()],
        record.options,
    )
    if len(archs) < MIN_ARCHS:
        result = {
            "error": f"{len(archs)} of the architectures have ground truth in {record.truth!r}; "
            f"at least {MIN_ARCHS} needed",
            "figures": [],
        }
        figures: dict[str, str] = {}
    else:
        result, figures = await run_in_threadpool(_run, study, ctx, record.truth or "")
    record.result = result
    pipe = redis.pipeline()
    pipe.set(store.study_key(record.study_id), store.encode_record(record), ex=settings.job_ttl_seconds)
    if figures:
        pipe.hset(store.study_figures_key(record.study_id), mapping=figures)
        pipe.expire(store.study_figures_key(record.study_id), settings.job_ttl_seconds)
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
