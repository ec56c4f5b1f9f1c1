"""The workers' Celery application: the shared configuration (archscore.contract.broker), the tasks,
the heartbeat that keeps held messages from being redelivered, and tracing in each pool process when
ARCHSCORE_OTLP_ENDPOINT is set."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from archscore.contract.broker import make_celery
from archscore.contract.settings import get_settings
from archscore.workers.heartbeat import Heartbeat


def make_worker_celery(redis_url: str | None = None) -> Celery:
    app = make_celery(get_settings(), redis_url, include=["archscore.workers.tasks", "archscore.workers.training"])
    app.steps["consumer"].add(Heartbeat)
    return app


app = make_worker_celery()


@worker_process_init.connect(weak=False)
def _start_tracing(**_: Any) -> None:
    """In the process that runs tasks (a prefork pool process, after the fork: the exporter's thread
    does not survive one; the solo pool's only process)."""
    endpoint = get_settings().otlp_endpoint
    if endpoint:
        from archscore.contract.tracing import WORKER, start_tracing

        start_tracing(WORKER, endpoint)


@worker_process_shutdown.connect(weak=False)
def _stop_tracing(**_: Any) -> None:
    if get_settings().otlp_endpoint:
        from archscore.contract.tracing import stop_tracing

        stop_tracing()
