"""POST /v1/scores: the scoring path's steps in order (archscore.service.scoring)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from archscore.contract.settings import get_settings
from archscore.service.deps import CallerDep, celery_for, checked_wait, redis_for
from archscore.service.jobs import admit_job, wait_for_job
from archscore.service.rankings import rankings, select
from archscore.service.responses import FastJSONResponse
from archscore.service.routes import v1_router
from archscore.service.schemas import Job, ScoreRequest
from archscore.service.scoring.cache import plan_and_answer
from archscore.service.scoring.enqueue import create_job
from archscore.service.scoring.results import render_job

router = v1_router()


@router.post(
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
    wait: Annotated[
        float, Query(ge=0, description="seconds to wait for the result (at most the server's bound)")
    ] = 0.0,
) -> FastJSONResponse:
    # settings and the Redis client looked up here rather than as dependencies: FastAPI spends tens of
    # microseconds per dependency, a measurable share of the cached path (benchmarks/cached_path.py)
    settings = get_settings()
    wait = checked_wait(wait, settings)
    redis = redis_for(settings)
    plan, answer = await plan_and_answer(body, settings, redis, caller)
    if isinstance(answer, dict):  # every score cached (usually answered before routing: scoring/cache.py)
        return FastJSONResponse(answer)
    await admit_job(redis, settings, caller, plan.job.job_id)
    job = await create_job(plan, answer, settings, redis, celery_for(settings))
    if wait:
        await wait_for_job(redis, job, wait)
    valid = plan.request
    stats = None
    if valid.truth:
        stats = select(await rankings(redis, valid.space, valid.protocol_hash, valid.truth), valid.estimators)
    rendered = await render_job(redis, job, stats)
    return FastJSONResponse(rendered, status_code=200 if rendered["status"] == "done" else 202)
