"""The Celery application: Redis broker and result store, JSON only, at-least-once delivery."""

from __future__ import annotations

from celery import Celery

from archscore.service.settings import get_settings
from archscore.workers.heartbeat import Heartbeat


def make_celery(redis_url: str | None = None) -> Celery:
    settings = get_settings()
    url = redis_url or settings.redis_url or "redis://127.0.0.1:6379/0"
    app = Celery("archscore", broker=url, backend=url, include=["archscore.workers.tasks", "archscore.workers.training"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,  # a task is acknowledged after it ran: a killed worker's chunk is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes={name: {"queue": "training"} for name in ("archscore.train_supernet", "archscore.average_supernets")},
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # a short timeout, refreshed for every message a live worker holds (workers/heartbeat.py)
            # kombu sweeps for unacknowledged messages older than the visibility timeout only every
            # interval * throttle seconds (10 * 10 by default): sweep every few seconds instead, so the
            # chunk of a killed worker comes back soon after the visibility timeout, not up to 100 s later.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 5)),
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout},
        result_expires=3600,
        task_track_started=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    app.steps["consumer"].add(Heartbeat)
    return app


app = make_celery()
