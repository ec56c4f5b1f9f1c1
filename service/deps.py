"""Typed dependencies shared by the routes: settings, the Redis client, the task sender, API keys."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from redis.asyncio import Redis

from archscore.service import store
from archscore.service.errors import ApiError
from archscore.service.settings import Settings, get_settings


async def settings_dep() -> Settings:
    """Async, so FastAPI resolves it without a threadpool hop on every request."""
    return get_settings()


def redis_url(settings: Settings) -> str:
    return settings.redis_url or "redis://127.0.0.1:6379/0"


@functools.lru_cache(maxsize=4)
def _redis_for(url: str) -> Redis:
    # a short connect timeout: during an outage requests fail fast (503) instead of hanging; no per-command
    # timeout, which costs a timer per command on the cached path (a Redis that is down refuses connections)
    return Redis.from_url(url, decode_responses=True, socket_connect_timeout=2)


def redis_for(settings: Settings) -> Redis:
    return _redis_for(redis_url(settings))


def checked_wait(wait: float, settings: Settings) -> float:
    """``wait`` when it is within the server's bound; a 422 naming the bound otherwise (a long-poll
    silently cut short would look like a slow job)."""
    if wait > settings.max_wait_seconds:
        raise ApiError(422, "invalid request", [("wait", f"must be at most {settings.max_wait_seconds:g} seconds, "
                                                 "this server's bound (ARCHSCORE_MAX_WAIT_SECONDS); poll again "
                                                 "for longer")])
    return wait


async def redis_client(settings: Annotated[Settings, Depends(settings_dep)]) -> Redis:
    return redis_for(settings)


@functools.lru_cache(maxsize=4)
def _celery_for(url: str):
    from archscore.workers.celery_app import make_celery

    return make_celery(url)


async def celery_app(settings: Annotated[Settings, Depends(settings_dep)]):
    return _celery_for(redis_url(settings))


def chunk_task_id(job_id: str, chunk_index: int) -> str:
    """The Celery task id of a job's chunk: known without asking anyone, so a cancel can revoke it."""
    return f"{job_id}.{chunk_index}"


def chunk_sender(celery):
    def send(job_id: str, chunk_index: int, space: str, protocol: dict, estimators: list[str], archs: list[str]):
        celery.send_task("archscore.score_chunk", args=[job_id, chunk_index, space, protocol, estimators, archs],
                         task_id=chunk_task_id(job_id, chunk_index))

    return send


async def training_sender(celery=Depends(celery_app)):
    def send(job_id: str, name: str, config: dict, resume: bool):
        celery.send_task("archscore.train_supernet", args=[job_id, name, config, resume], queue="training",
                         task_id=job_id)

    return send


async def average_sender(celery=Depends(celery_app)):
    def send(job_id: str, name: str, sources: list[str]):
        celery.send_task("archscore.average_supernets", args=[job_id, name, sources], queue="training",
                         task_id=job_id)

    return send


@dataclass(frozen=True)
class Caller:
    """Who calls. ``owner`` names what the caller creates: a digest of its key (never the key), or "" on
    a server without keys (one shared namespace). ``admin``: the operator, who sees everything."""

    owner: str
    admin: bool

    def may_see(self, owner: str | None) -> bool:
        return self.admin or (owner or "") == self.owner


def _owner(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _matches(given: str, keys: list[str]) -> bool:
    return any(secrets.compare_digest(given.encode(), key.encode()) for key in keys)  # constant time


def api_key_problem(given: str | None, settings: Settings) -> tuple[str, str] | None:
    """Why a request's X-API-Key is refused (message, reason), or None when it is accepted."""
    if not settings.api_keys and not settings.admin_keys:
        return None
    if given is None:
        return "missing API key", "this server requires an API key"
    if not _matches(given, settings.api_keys) and not _matches(given, settings.admin_keys):
        return "invalid API key", "not a valid key"
    return None


def caller_for(given: str | None, settings: Settings) -> Caller:
    """The caller of an accepted key (``api_key_problem`` is None)."""
    if not settings.api_keys and not settings.admin_keys:
        return Caller("", admin=True)
    return Caller(_owner(given or ""), admin=_matches(given or "", settings.admin_keys))


async def rate_limit(caller: Caller, settings: Settings, redis: Redis) -> None:
    """A 429 with Retry-After once the caller's key has sent ``rate_limit_per_minute`` requests in this
    minute (a fixed window per key; none without keys)."""
    if not caller.owner or not settings.rate_limit_per_minute:
        return
    now = time.time()
    key = store.rate_key(caller.owner, int(now // 60))
    pipe = redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, 61)
    count, _ = await pipe.execute()
    if count > settings.rate_limit_per_minute:
        retry = max(1, 60 - int(now % 60))
        raise ApiError(429, "too many requests", [("X-API-Key", f"more than {settings.rate_limit_per_minute} "
                       f"requests this minute (ARCHSCORE_RATE_LIMIT_PER_MINUTE); retry in {retry} s")],
                       headers={"Retry-After": str(retry)})


COUNTED = "archscore.caller"  # request state: the caller, once counted against the rate limit


async def require_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="required when the server has API keys configured")] = None,
) -> Caller:
    settings = get_settings()  # settings directly: this runs on every /v1 request
    counted = request.scope.get("state", {}).get(COUNTED)
    if counted is not None:  # the cached-scores fast path authorised and counted this request already
        return counted
    problem = api_key_problem(x_api_key, settings)
    if problem:
        raise ApiError(401, problem[0], [("X-API-Key", problem[1])])
    caller = caller_for(x_api_key, settings)
    await rate_limit(caller, settings, redis_for(settings))
    return caller


CallerDep = Annotated[Caller, Depends(require_api_key)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
RedisDep = Annotated[Redis, Depends(redis_client)]
