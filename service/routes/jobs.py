"""/v1/jobs: a job's status, progress and results (scoring or supernet training), the recent ones,
cancelling one."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from archscore.contract.records import ScoreJob
from archscore.estimators.spaces import get_space
from archscore.service import jobs, supernets
from archscore.service.deps import CallerDep, CeleryDep, RedisDep, SettingsDep, checked_wait
from archscore.service.rankings import rankings, select
from archscore.service.routes import v1_router
from archscore.service.schemas import Job, TrainingJob
from archscore.service.scoring.results import render_job

router = v1_router()
JobId = Annotated[
    str, Path(pattern="^[0-9a-f]{32}$", description="the job id returned by POST /v1/scores or /v1/supernets")
]


@router.get(
    "/jobs/{job_id}",
    response_model=Job | TrainingJob,
    summary="Job status, progress and results",
    description="A scoring job (`kind` scores) or a supernet training job (`kind` supernet_training).",
)
async def get_job(
    job_id: JobId,
    redis: RedisDep,
    settings: SettingsDep,
    caller: CallerDep,
    wait: Annotated[
        float, Query(ge=0, description="long-poll: seconds to wait for the job to finish (at most the server's bound)")
    ] = 0.0,
) -> dict:
    wait = checked_wait(wait, settings)
    job = await jobs.load_job(redis, job_id, caller)
    if not isinstance(job, ScoreJob):
        if wait:
            await supernets.wait_for_training(redis, job, wait)
        return await supernets.render_training_job(redis, job)
    if wait:
        await jobs.wait_for_job(redis, job, wait)
    stats = None
    if job.truth:
        stats = select(await rankings(redis, get_space(job.space), job.protocol_hash, job.truth), job.estimators)
    return await render_job(redis, job, stats)


@router.get(
    "/jobs",
    summary="The most recent scoring jobs that went to the workers, newest first, with progress",
    description="The caller's own jobs (every key's for an admin key).",
)
async def get_jobs(redis: RedisDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict]:
    return await jobs.recent_jobs(redis, caller, limit)


@router.delete(
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
    celery: CeleryDep,
) -> dict:
    job = await jobs.load_job(redis, job_id, caller)
    if not isinstance(job, ScoreJob):
        await supernets.cancel_training(redis, job, settings, celery.control.revoke)
        return await supernets.render_training_job(redis, job)
    await jobs.cancel_job(redis, job, settings, celery.control.revoke)
    return await render_job(redis, job, None)
