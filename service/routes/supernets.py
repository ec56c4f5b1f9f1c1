"""/v1/supernets: the checkpoints, training one, averaging several (archscore.service.supernets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from fastapi.responses import StreamingResponse

from archscore.service import supernets
from archscore.service.deps import CallerDep, CeleryDep, RedisDep, SettingsDep
from archscore.service.routes import v1_router
from archscore.service.schemas import AverageRequest, TrainingJob, TrainRequest

router = v1_router()

Sha256 = Annotated[
    str, Path(pattern="^[0-9a-f]{64}$", description="the full sha256 of the checkpoint's weights (GET /v1/supernets)")
]
OCTETS = "application/octet-stream"


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


@router.get(
    "/supernets",
    summary="Supernet checkpoints available for one-shot scoring, newest first",
    description="The caller's own checkpoints and the shared ones (`shared`: the operator's, which every key "
    "reads and none writes); a key's own checkpoint hides a shared one of the same name.",
)
async def get_supernets(settings: SettingsDep, caller: CallerDep) -> list[dict]:
    return await supernets.list_supernets(settings, caller)


@router.get(
    "/supernets/{sha256}/files/{file}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the file, byte for byte",
            "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    summary="Download a file of a supernet checkpoint",
    description="The checkpoint's manifest or weights (a state dict, to be loaded with "
    "`torch.load(..., weights_only=True)`), byte for byte, found by the exact sha256 of its weights. Workers on "
    "hosts without the API's supernet folder download a checkpoint this way before scoring one-shot "
    "estimators with it (ARCHSCORE_CHECKPOINT_SOURCE) and check the weights against the sha256.",
)
async def get_supernet_file(
    sha256: Sha256, file: Annotated[supernets.CheckpointFileName, Path(description="which file")], settings: SettingsDep
) -> StreamingResponse:
    found = await supernets.checkpoint_file(settings, sha256, file)
    return StreamingResponse(found.blocks(), media_type=OCTETS, headers={"Content-Length": str(found.size)})
