"""/v1/supernets: the checkpoints, training one, averaging several (archscore.service.supernets)."""

from __future__ import annotations

from archscore.service import supernets
from archscore.service.deps import CallerDep, CeleryDep, RedisDep, SettingsDep
from archscore.service.routes import v1_router
from archscore.service.schemas import AverageRequest, TrainingJob, TrainRequest

router = v1_router()


@router.post(
    "/supernets",
    response_model=TrainingJob,
    status_code=202,
    summary="Train a supernet checkpoint",
    description="Starts a training job on a training worker (queue `training`) and returns it (202); follow it "
    "with GET /v1/jobs/{job_id} (epoch, step, loss, seconds left). The checkpoint is written after every epoch "
    "under the given name and can be scored with as soon as it exists (`protocol.oneshot.supernet`).",
)
async def post_supernets(
    body: TrainRequest, redis: RedisDep, settings: SettingsDep, caller: CallerDep, celery: CeleryDep
) -> dict:
    job = await supernets.start_training(body, settings, redis, celery, caller)
    return await supernets.render_training_job(redis, job)


@router.post(
    "/supernets/average",
    response_model=TrainingJob,
    status_code=202,
    summary="Average supernet checkpoints",
    description="Averages the weights of checkpoints of the same network (named ones, and/or the snapshots a "
    "checkpoint kept of its last epochs) into a new checkpoint, on the training worker; follow the job with "
    "GET /v1/jobs/{job_id}.",
)
async def post_supernet_average(
    body: AverageRequest, redis: RedisDep, settings: SettingsDep, caller: CallerDep, celery: CeleryDep
) -> dict:
    job = await supernets.start_average(body, settings, redis, celery, caller)
    return await supernets.render_training_job(redis, job)


@router.get("/supernets", summary="Supernet checkpoints available for one-shot scoring, newest first")
async def get_supernets(settings: SettingsDep) -> list[dict]:
    return await supernets.list_supernets(settings)
