"""Typed dependencies shared by the routes: settings, the Redis client, the Celery client, the caller (API
keys and their rate limit)."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, Request
from redis.asyncio import Redis

from archscore.contract import store
from archscore.contract.broker import make_celery
from archscore.contract.settings import Settings, get_settings
from archscore.service.errors import ApiError


async def settings_dep() -> Settings:
    """Async, so FastAPI resolves it without a threadpool hop on every request."""
    return get_settings()


@functools.lru_cache(maxsize=4)
def _redis_for(url: str) -> Redis:
    # a short connect timeout: during an outage requests fail fast (503) instead of hanging; no per-command
    # timeout, which costs a timer per command on the cached path (a Redis that is down refuses connections)
    return Redis.from_url(url, decode_responses=True, socket_connect_timeout=2)


def redis_for(settings: Settings) -> Redis:
    return _redis_for(settings.broker_url)


def checked_wait(wait: float, settings: Settings) -> float:
    """``wait`` when it is within the server's bound; a 422 naming the bound otherwise (a long-poll
    silently cut short would look like a slow job)."""
    if wait > settings.max_wait_seconds:
        raise ApiError(
            422,
            "invalid request",
            [
                (
                    "wait",
                    f"must be at most {settings.max_wait_seconds:g} seconds, "
                    "this server's bound (ARCHSCORE_MAX_WAIT_SECONDS); poll again "
                    "for longer",
                )
            ],
        )
    return wait


async def redis_client(settings: Annotated[Settings, Depends(settings_dep)]) -> Redis:
    return redis_for(settings)


@functools.lru_cache(maxsize=4)
def _celery_for(url: str) -> Celery:
    return make_celery(get_settings(), url)


def celery_for(settings: Settings) -> Celery:
    """The Celery client the API sends tasks and broadcasts with (created on first use: the cached path
    needs no broker)."""
    return _celery_for(settings.broker_url)


async def celery_client(settings: Annotated[Settings, Depends(settings_dep)]) -> Celery:
    return celery_for(settings)


@dataclass(frozen=True)
class Caller:
    """Who calls. ``owner`` names what the caller creates: a digest of its key (never the key), or "" on
    a server without keys (one shared namespace). ``admin``: the operator, who sees everything."""

    owner: str
    admin: bool

    def may_see(self, owner: str | None) -> bool:
        return self.admin or (owner or "") == self.owner

    @property
    def checkpoints(self) -> str | None:
        """Whose supernet checkpoints the caller sees and writes (archscore.estimators.one_shot.registry):
        its own and the shared ones; the operator (and everyone on a server without keys): all of them,
        writing shared ones (None)."""
        return None if self.admin else self.owner


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
        raise ApiError(
            429,
            "too many requests",
            [
                (
                    "X-API-Key",
                    f"more than {settings.rate_limit_per_minute} "
                    f"requests this minute (ARCHSCORE_RATE_LIMIT_PER_MINUTE); retry in {retry} s",
                )
            ],
            headers={"Retry-After": str(retry)},
        )


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
CeleryDep = Annotated[Celery, Depends(celery_client)]
