"""The Celery application both sides configure alike: Redis broker and result store, JSON only,
at-least-once delivery of scoring chunks. The API uses it to send tasks; the workers add their tasks
and the heartbeat (workers/celery_app.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archscore.contract.settings import Settings
from archscore.contract.tasks import task_routes

if TYPE_CHECKING:
    from celery import Celery


def make_celery(settings: Settings, redis_url: str | None = None, include: list[str] | None = None) -> Celery:
    from celery import Celery

    url = redis_url or settings.broker_url
    app = Celery("archscore", broker=url, backend=url, include=include or [])
    app.conf.update(celery_config(settings))
    return app


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,  # a task is acknowledged after it ran: a killed worker's chunk is redelivered
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_routes": task_routes(),
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            # a short timeout, refreshed for every message a live worker holds (workers/heartbeat.py).
            # kombu sweeps for unacknowledged messages older than the visibility timeout only every
            # interval * throttle seconds (10 * 10 by default): sweep every few seconds instead, so the
            # chunk of a killed worker comes back soon after the visibility timeout, not up to 100 s later.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 5)),
            "unacked_restore_throttle": 1,
            # a sweep holds this lock for milliseconds; kombu's default expiry (300 s) would stop every
            # worker's sweeps for 5 minutes when the holder is cut off from Redis mid-sweep
            "unacked_mutex_expire": settings.visibility_timeout,
            # kombu waits for ever on a command by default: a worker cut off from Redis by the network (no
            # reset) would hang on its next acknowledgement instead of reconnecting once the network is back
            "socket_timeout": settings.redis_socket_timeout,
            "socket_connect_timeout": settings.redis_socket_timeout,
        },
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout},
        "redis_socket_timeout": settings.redis_socket_timeout,  # the result store's (Celery's default: 120 s)
        "redis_socket_connect_timeout": settings.redis_socket_timeout,
        "result_expires": 3600,
        "task_track_started": True,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
    }


def send(celery: Celery, payload: Any) -> None:
    """Enqueue the task a payload (archscore.contract.tasks) stands for, on its queue, under its id."""
    celery.send_task(payload.task_name, kwargs=payload.kwargs(), queue=payload.queue, task_id=payload.task_id())
