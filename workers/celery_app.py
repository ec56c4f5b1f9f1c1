"""The workers' Celery application: the shared configuration (archscore.contract.broker), the tasks
and the heartbeat that keeps held messages from being redelivered."""

from __future__ import annotations

from celery import Celery

from archscore.contract.broker import make_celery
from archscore.contract.settings import get_settings
from archscore.workers.heartbeat import Heartbeat


def make_worker_celery(redis_url: str | None = None) -> Celery:
    app = make_celery(get_settings(), redis_url, include=["archscore.workers.tasks", "archscore.workers.training"])
    app.steps["consumer"].add(Heartbeat)
    return app


app = make_worker_celery()
