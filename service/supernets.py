"""Supernet checkpoints over the API: list them, start training or averaging jobs, report progress.

Both kinds of job run on the training queue and write a checkpoint folder under the supernet
directory; the checkpoint's name is locked (in Redis) by its job until the job ends. A key's
checkpoints are its own (folders "{owner}~{name}", shown as name); the operator's are shared, read by
every key and written by none (archscore.estimators.one_shot.registry)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.broker import send
from archscore.contract.records import TrainingJob, TrainingKind, TrainingStatus
from archscore.contract.settings import Settings
from archscore.contract.tasks import AverageSupernets, TrainSupernet
from archscore.estimators.datasets import training_images_available
from archscore.estimators.one_shot.registry import (
    CheckpointError,
    folder_name,
    folder_of,
    list_checkpoints,
    name_seen_by,
    read_manifest,
    resolve,
    seen_by,
)
from archscore.estimators.protocol import VALIDATION_IMAGES
from archscore.estimators.spaces import DEFAULT_SPACE, get_space
from archscore.estimators.spaces.base import ISOMORPHISM, SUPERNET, NetworkConfigError
from archscore.service.deps import Caller
from archscore.service.errors import ApiError
from archscore.service.jobs import Revoke, admit_job
from archscore.service.schemas import AverageRequest, TrainRequest


async def list_supernets(settings: Settings, caller: Caller) -> list[dict]:
    return await run_in_threadpool(list_checkpoints, settings.supernet_path, caller.checkpoints)


CheckpointFileName = Literal["manifest.json", "weights.pt"]  # the registry's MANIFEST and WEIGHTS
BLOCK = 1 << 20  # bytes read and sent at a time


@dataclass
class CheckpointFile:
    """One file of a checkpoint, opened: a later retraining that replaces it (by rename) does not change
    what this download sends."""

    size: int
    handle: BinaryIO

    def blocks(self) -> Iterator[bytes]:
        try:
            while block := self.handle.read(BLOCK):
                yield block
        finally:
            self.handle.close()


def _open_checkpoint_file(root: Path, sha256: str, name: str) -> CheckpointFile:
    handle = open(folder_of(root, sha256) / name, "rb")  # closed by blocks()
    return CheckpointFile(os.fstat(handle.fileno()).st_size, handle)


async def checkpoint_file(settings: Settings, sha256: str, name: CheckpointFileName) -> CheckpointFile:
    """A file of the checkpoint whose weights have exactly this sha256 (a worker on another host downloads
    it: archscore.workers.checkpoint_fetch); 404 when no checkpoint (or kept snapshot) here has it."""
    try:
        return await run_in_threadpool(_open_checkpoint_file, settings.supernet_path, sha256, name)
    except (CheckpointError, FileNotFoundError):  # none, or replaced between the lookup and the open
        reason = f"no supernet checkpoint with sha256 {sha256} (replaced or removed)"
        raise ApiError(404, "no such checkpoint", [("sha256", reason)]) from None


def _check_space(body: TrainRequest) -> None:
    """The space has a supernet and takes the network settings (422 naming the setting)."""
    try:
        space = get_space(body.space)
    except KeyError as exc:
        raise ApiError(422, "unknown search space", [("space", exc.args[0])]) from None
    if not space.has(SUPERNET):
        raise ApiError(422, "no supernet", [("space", f"search space {space.name} has no supernet")])
    try:
        space.supernet_config(body.network)
    except NetworkConfigError as exc:
        raise ApiError(422, "invalid network settings", [(f"network.{exc.field}", exc.reason)]) from None
    if body.sampler == "deiso" and not space.has(ISOMORPHISM):
        raise ApiError(
            422,
            "invalid sampler",
            [
                (
                    "sampler",
                    f"search space {space.name} has no isomorphism classes "
                    "to sample uniformly over; use uniform or fair",
                )
            ],
        )


def _check_work(body: TrainRequest, settings: Settings) -> None:
    """The training's work (images through the supernet) within the server's bound (422 naming it)."""
    images = training_images_available(settings.cifar_root).get("cifar10", 0) - VALIDATION_IMAGES
    steps = body.steps_per_epoch or max(1, images // body.batch_size)  # default: one pass over the training split
    work = body.epochs * steps * body.archs_per_step * body.batch_size
    if work > settings.max_training_work:
        raise ApiError(
            422,
            "too much training for this server",
            [
                (
                    "epochs",
                    f"{body.epochs} epochs x {steps} steps x {body.archs_per_step} architectures x "
                    f"{body.batch_size} images = {work:,} exceeds this server's bound of "
                    f"{settings.max_training_work:,} "
                    "(ARCHSCORE_MAX_TRAINING_WORK)",
                )
            ],
        )


async def start_training(body: TrainRequest, settings: Settings, redis: Redis, celery, caller: Caller) -> TrainingJob:
    """Check the space, its network settings, the work and the name, lock the name for this job, store
    the job and enqueue the training."""
    _check_space(body)
    _check_work(body, settings)
    folder = folder_name(body.name, caller.checkpoints)
    manifest = await run_in_threadpool(read_manifest, settings.supernet_path / folder)
    if manifest is not None and body.resume and manifest.get("space", DEFAULT_SPACE) != get_space(body.space).name:
        raise ApiError(422, "another space", [("space", f"{body.name!r} is a supernet of {manifest.get('space')}")])
    if manifest is not None and not body.resume:
        raise ApiError(
            409,
            f"a checkpoint named {body.name!r} exists",
            [("name", "choose another name, or set resume to continue training it")],
        )
    if manifest is None and body.resume:
        shared = caller.checkpoints is not None and (
            await run_in_threadpool(read_manifest, settings.supernet_path / body.name) is not None
        )
        reason = (
            f"{body.name!r} is a shared checkpoint: every key reads it, none writes it (without resume you "
            "train a checkpoint of your own under this name)"
            if shared
            else f"no checkpoint named {body.name!r}"
        )
        raise ApiError(422, "nothing to resume", [("resume", reason)])
    if manifest is not None and manifest.get("epochs", 0) >= body.epochs:
        raise ApiError(
            422,
            "nothing to train",
            [("epochs", f"{body.name!r} already has {manifest['epochs']} epochs; ask for more")],
        )
    job = await _store_job(redis, settings, caller, "supernet_training", folder, body.train_config(), body.resume)
    task = TrainSupernet(job_id=job.job_id, name=folder, config=job.config, resume=body.resume)
    await run_in_threadpool(send, celery, task)
    return job


async def start_average(body: AverageRequest, settings: Settings, redis: Redis, celery, caller: Caller) -> TrainingJob:
    """Resolve the sources among the caller's checkpoints (as folders relative to the supernet
    directory) and enqueue the averaging."""
    root, owner = settings.supernet_path, caller.checkpoints
    details = []
    sources = []
    for i, ref in enumerate(body.checkpoints):
        try:  # by name or sha256
            sources.append(_folder(await run_in_threadpool(resolve, root, ref, None, owner), owner))
        except CheckpointError as exc:
            details.append((f"checkpoints[{i}]", str(exc)))
    if body.snapshots_of is not None:
        try:
            snapshots = root / _folder(await run_in_threadpool(resolve, root, body.snapshots_of, None, owner), owner)
        except CheckpointError as exc:
            snapshots = None
            details.append(("snapshots_of", str(exc)))
        kept = await run_in_threadpool(lambda: sorted(snapshots.glob("snapshots/epoch-*"))) if snapshots else []
        if snapshots and not kept:
            details.append(("snapshots_of", f"{body.snapshots_of!r} kept no snapshots (train it with keep_snapshots)"))
        sources += [str(p.relative_to(root)) for p in kept]
    if not details and len(sources) < 2:
        details.append(("checkpoints", "averaging needs at least two checkpoints"))
    if details:
        raise ApiError(422, "invalid average request", details)
    folder = folder_name(body.name, owner)
    if await run_in_threadpool(read_manifest, root / folder) is not None:
        raise ApiError(409, f"a checkpoint named {body.name!r} exists", [("name", "choose another name")])
    job = await _store_job(redis, settings, caller, "supernet_average", folder, {"average_of": sources}, False)
    await run_in_threadpool(send, celery, AverageSupernets(job_id=job.job_id, name=folder, sources=sources))
    return job


def _folder(checkpoint: dict, owner: str | None) -> str:
    """The folder of a checkpoint as ``owner`` sees it (registry.list_checkpoints), relative to the supernet
    directory; a built-in one has none there."""
    if checkpoint["builtin"]:
        raise CheckpointError(
            f"{checkpoint['name']!r} is built into archscore: only checkpoints of the supernet directory average"
        )
    return checkpoint["name"] if checkpoint["shared"] else folder_name(checkpoint["name"], owner)


async def _store_job(
    redis: Redis, settings: Settings, caller: Caller, kind: TrainingKind, name: str, config: dict, resume: bool
) -> TrainingJob:
    """Count the job against its key's quota, lock the checkpoint's folder for it, and store it queued."""
    job_id = uuid.uuid4().hex
    await admit_job(redis, settings, caller, job_id)
    if not await redis.set(store.supernet_lock_key(name), job_id, nx=True, ex=settings.job_ttl_seconds):
        shown = name_seen_by(name, caller.checkpoints)
        raise ApiError(409, f"{shown!r} is being written by another job", [("name", "wait for that job")])
    job = TrainingJob(
        job_id=job_id, kind=kind, name=name, config=config, resume=resume, created=time.time(), owner=caller.owner
    )
    pipe = redis.pipeline()  # no TTL until the job ends (workers/training.py sets it), so never evicted
    pipe.set(store.job_key(job_id), store.encode_record(job))
    pipe.set(store.training_status_key(job_id), store.encode_record(TrainingStatus(status="queued")))
    await pipe.execute()
    return job


async def cancel_training(redis: Redis, job: TrainingJob, settings: Settings, revoke: Revoke) -> None:
    """Cancel a queued or running training/averaging: the worker stops at its next progress report
    (a queued one never starts), and the checkpoint name is released now."""
    job_id = job.job_id
    status = store.decode_training_status(await redis.get(store.training_status_key(job_id)))
    if status is None or not status.unfinished:
        raise ApiError(409, "the job has finished", [("job_id", "only a queued or running job can be cancelled")])
    status.status = "cancelled"
    pipe = redis.pipeline()
    pipe.set(store.job_cancelled_key(job_id), "1", ex=settings.job_ttl_seconds)
    pipe.set(store.training_status_key(job_id), store.encode_record(status), ex=settings.job_ttl_seconds)
    pipe.eval(store.RELEASE_LOCK, 1, store.supernet_lock_key(job.name), job_id)
    for key in store.job_keys(job_id):  # the job has ended: it may expire now
        pipe.expire(key, settings.job_ttl_seconds)
    await pipe.execute()
    await run_in_threadpool(revoke, [job_id])


async def render_training_job(redis: Redis, job: TrainingJob) -> dict:
    raw_status, owner, cancelled = await redis.mget(
        store.training_status_key(job.job_id),
        store.supernet_lock_key(job.name),
        store.job_cancelled_key(job.job_id),
    )
    status = store.decode_training_status(raw_status) or TrainingStatus(
        status="failed", error="the job's status expired"
    )
    if cancelled:  # the worker may report once more before it notices
        status.status = "cancelled"
    elif status.unfinished and owner != job.job_id:
        # the trainer refreshes the name's lock with every progress report; an expired lock means it died
        status.status = "failed"
        status.error = "the training worker stopped reporting (lost); submit again with resume to continue"
    return {
        "job_id": job.job_id,
        "kind": job.kind,
        "status": status.status,
        "name": name_seen_by(job.name, job.owner),
        "config": _config_seen_by(job.config, job.owner),
        "resume": job.resume,
        "progress": {"epochs": job.config.get("epochs", 0), **status.progress},
        "checkpoint": status.checkpoint and seen_by(status.checkpoint, job.owner),
        "error": status.error,
    }


def _config_seen_by(config: dict, owner: str | None) -> dict:
    """An averaging's sources under the names their owner gives them."""
    if "average_of" not in config:
        return config
    return {**config, "average_of": [name_seen_by(source, owner) for source in config["average_of"]]}


async def wait_for_training(redis: Redis, job: TrainingJob, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = store.decode_training_status(await redis.get(store.training_status_key(job.job_id)))
        if status is None or not status.unfinished:
            return
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
