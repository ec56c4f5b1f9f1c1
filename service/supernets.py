"""Supernet checkpoints over the API: list them, start a training job, report its progress."""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from estimators.one_shot.registry import list_checkpoints, read_manifest
from service import store
from service.errors import ApiError
from service.schemas import TrainRequest
from service.settings import Settings


async def list_supernets(settings: Settings) -> list[dict]:
    return await run_in_threadpool(list_checkpoints, settings.supernet_path)


async def start_training(body: TrainRequest, settings: Settings, redis: Redis, send_training) -> dict:
    """Check the name, lock it for this job, store the job and enqueue the training."""
    folder = settings.supernet_path / body.name
    manifest = await run_in_threadpool(read_manifest, folder)
    if manifest is not None and not body.resume:
        raise ApiError(409, f"a checkpoint named {body.name!r} exists",
                       [("name", "choose another name, or set resume to continue training it")])
    if manifest is None and body.resume:
        raise ApiError(422, "nothing to resume", [("resume", f"no checkpoint named {body.name!r}")])
    if manifest is not None and manifest.get("epochs", 0) >= body.epochs:
        raise ApiError(422, "nothing to train",
                       [("epochs", f"{body.name!r} already has {manifest['epochs']} epochs; ask for more")])
    job_id = uuid.uuid4().hex
    if not await redis.set(store.supernet_lock_key(body.name), job_id, nx=True, ex=settings.job_ttl_seconds):
        raise ApiError(409, f"{body.name!r} is being trained by another job", [("name", "wait for that job")])
    job = {"job_id": job_id, "kind": "supernet_training", "name": body.name, "config": body.train_config(),
           "resume": body.resume, "created": time.time()}
    pipe = redis.pipeline()
    pipe.set(store.job_key(job_id), store.encode(job), ex=settings.job_ttl_seconds)
    pipe.set(store.training_status_key(job_id), store.encode({"status": "queued"}), ex=settings.job_ttl_seconds)
    await pipe.execute()
    await run_in_threadpool(send_training, job_id, body.name, job["config"], body.resume)
    return job


async def render_training_job(redis: Redis, job: dict) -> dict:
    raw_status, owner = await redis.mget(store.training_status_key(job["job_id"]), store.supernet_lock_key(job["name"]))
    status = store.decode(raw_status) or {"status": "failed", "error": "the job's status expired"}
    if status["status"] in ("queued", "running") and owner != job["job_id"]:
        # the trainer refreshes the name's lock with every progress report; an expired lock means it died
        status = {**status, "status": "failed",
                  "error": "the training worker stopped reporting (lost); submit again with resume to continue"}
    progress = {"epochs": job["config"]["epochs"], **(status.get("progress") or {})}
    return {
        "job_id": job["job_id"],
        "kind": "supernet_training",
        "status": status["status"],
        "name": job["name"],
        "config": job["config"],
        "resume": job["resume"],
        "progress": progress,
        "checkpoint": status.get("checkpoint"),
        "error": status.get("error"),
    }


async def wait_for_training(redis: Redis, job: dict, seconds: float) -> None:
    import asyncio

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = store.decode(await redis.get(store.training_status_key(job["job_id"]))) or {}
        if status.get("status") in ("done", "failed", None):
            return
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
