"""Celery task: train a supernet checkpoint under the supernet directory, reporting progress to Redis.

Training runs on its own queue (``training``) so that it never holds up scoring workers, and is
acknowledged when it starts: an hours-long task must not be redelivered after the visibility
timeout. A training whose worker dies is continued by submitting it again with ``resume``.
"""

from __future__ import annotations

import logging
import time

from archscore.contract import store
from archscore.contract.records import TrainingStatus
from archscore.contract.settings import get_settings
from archscore.contract.tasks import AverageSupernets, TrainSupernet
from archscore.workers.celery_app import app
from archscore.workers.metrics import training_ended, training_reported
from archscore.workers.tasks import _client, _device

log = logging.getLogger(__name__)

LOCK_SECONDS = 600  # a name stays locked this long after the last progress report of a dead worker
REPORT_EVERY = 1.0  # seconds between progress writes


def _write(r, job_id: str, status: TrainingStatus) -> None:
    """Progress of a running job: no TTL, so that no eviction drops it (archscore/contract/store.py)."""
    r.set(store.training_status_key(job_id), store.encode_record(status))


@app.task(name=TrainSupernet.task_name, acks_late=False, reject_on_worker_lost=False)
def train_supernet(**payload) -> dict:
    """Train a checkpoint (archscore.contract.tasks.TrainSupernet)."""
    from archscore.estimators.one_shot.registry import summary
    from archscore.estimators.one_shot.training import TrainConfig, TrainingStopped, train

    task = TrainSupernet.model_validate(payload)
    job_id, name = task.job_id, task.name
    r = _client()
    lock = store.supernet_lock_key(name)
    if r.exists(store.job_cancelled_key(job_id)):
        return {"status": "cancelled"}
    status = TrainingStatus(status="running", progress={"epochs": task.config["epochs"]})
    _write(r, job_id, status)
    training_reported(r, job_id)
    last = 0.0

    def cancelled() -> bool:  # asked between the architectures of a step: a cancel stops it within seconds
        return bool(r.exists(store.job_cancelled_key(job_id)))

    def report(p: dict) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < REPORT_EVERY and p["step"] < p["steps"]:
            return
        last = now
        status.progress = {k: p[k] for k in ("epoch", "epochs", "step", "steps", "loss", "seconds_left")}
        _write(r, job_id, status)
        r.expire(lock, LOCK_SECONDS)
        training_reported(r, job_id)

    try:
        manifest = train(
            TrainConfig(**task.config),
            get_settings().supernet_path / name,
            resume=task.resume,
            progress=report,
            device=_device(),
            should_stop=cancelled,
        )
        status.status, status.checkpoint = "done", summary(name, manifest)
    except TrainingStopped:
        status.status = "cancelled"
    except Exception as exc:
        log.exception("training %s failed", name)
        status.status, status.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        _finish(r, job_id, lock, status)
        training_ended(r, job_id)
    return {"status": status.status}


@app.task(name=AverageSupernets.task_name, acks_late=False, reject_on_worker_lost=False)
def average_supernets(**payload) -> dict:
    """Average checkpoints into a new one (archscore.contract.tasks.AverageSupernets)."""
    from archscore.estimators.one_shot.checkpoints import average_checkpoints
    from archscore.estimators.one_shot.registry import inside, summary

    task = AverageSupernets.model_validate(payload)
    job_id, name = task.job_id, task.name
    r = _client()
    if r.exists(store.job_cancelled_key(job_id)):
        return {"status": "cancelled"}
    root = get_settings().supernet_path
    status = TrainingStatus(status="running", progress={"epochs": 0})
    _write(r, job_id, status)
    try:
        manifest = average_checkpoints([inside(root, s) for s in task.sources], inside(root, name))
        status.status, status.checkpoint = "done", summary(name, manifest)
    except Exception as exc:
        log.exception("averaging into %s failed", name)
        status.status, status.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        _finish(r, job_id, store.supernet_lock_key(name), status)
    return {"status": status.status}


def _finish(r, job_id: str, lock: str, status: TrainingStatus) -> None:
    """The final status; the job's keys expire from now on, and the name is released if still ours."""
    ttl = get_settings().job_ttl_seconds
    pipe = r.pipeline()
    pipe.set(store.training_status_key(job_id), store.encode_record(status), ex=ttl)
    for key in store.job_keys(job_id):
        pipe.expire(key, ttl)
    pipe.eval(store.RELEASE_LOCK, 1, lock, job_id)
    pipe.execute()
