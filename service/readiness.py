"""What GET /readyz checks: Redis answers with its memory bounded as the service needs, and live
workers consume the scoring queue (and the training queue, without which supernet jobs wait)."""

from __future__ import annotations

import time

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract.settings import Settings
from archscore.contract.tasks import QUEUE_ROLES, SCORING_QUEUE

WORKER_CENSUS_TTL = 2.0  # seconds a readiness answer is reused: the broadcast blocks a thread for up to 1 s
EVICTING_POLICIES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")  # policies that may evict queues and jobs

_census: dict = {"at": 0.0, "queues": {}}


async def memory_bound(redis: Redis) -> dict:
    """Redis's memory bound as the service needs it: a maxmemory, and a policy that evicts only keys with a
    lifetime (volatile-*) or nothing (noeviction: a full Redis then answers 507). Read from INFO, which
    managed Redis services allow where CONFIG is refused; never changed here."""
    info = await redis.info("memory")
    maxmemory, policy = int(info.get("maxmemory", 0)), str(info.get("maxmemory_policy", "noeviction"))
    reason = None
    if maxmemory == 0:
        reason = "maxmemory is 0: Redis may grow until the machine runs out of memory; set one"
    elif policy in EVICTING_POLICIES:
        reason = f"maxmemory-policy {policy} may evict queued work and unfinished jobs; use volatile-lru"
    return {"maxmemory": maxmemory, "policy": policy, "bounded": reason is None, "reason": reason}


async def workers_by_queue(celery) -> dict[str, int]:
    """How many live workers consume each queue (a broadcast to every worker, answered within 1 s)."""
    now = time.monotonic()
    if now - _census["at"] > WORKER_CENSUS_TTL or not any(_census["queues"].values()):
        replies = await run_in_threadpool(lambda: celery.control.inspect(timeout=1.0).active_queues() or {})
        counts = dict.fromkeys(QUEUE_ROLES, 0)
        for queues in replies.values():
            for queue in {q["name"] for q in queues} & set(QUEUE_ROLES):
                counts[queue] += 1
        _census.update(at=time.monotonic(), queues=counts)
    return _census["queues"]


async def readiness(redis: Redis, settings: Settings, celery) -> tuple[bool, dict]:
    """(ready, the checks with ``missing``: every part that does not answer). Ready: scores can be served
    without filling the machine; training may wait for its worker."""
    checks: dict = {"redis": False, "workers": 0, "queues": dict.fromkeys(QUEUE_ROLES, 0), "redis_memory": None}
    try:
        checks["redis"] = bool(await redis.ping())
        checks["redis_memory"] = await memory_bound(redis)
    except Exception:
        pass
    if checks["redis"]:
        # the broadcast's broker connection may be one Redis dropped: a second try reconnects, so a Redis
        # that is back is never reported missing here while other routes answer
        for _ in range(2):
            try:
                checks["queues"] = await workers_by_queue(celery)
                break
            except Exception:
                _census["at"] = 0.0
    checks["workers"] = sum(checks["queues"].values())
    missing = [] if checks["redis"] else ["redis"]
    memory = checks["redis_memory"]
    unbounded = memory is not None and not memory["bounded"] and not settings.allow_unbounded_redis
    if unbounded:
        missing.append(f"redis memory bound ({memory['reason']})")
    missing += [f"{role} (queue {queue})" for queue, role in QUEUE_ROLES.items() if not checks["queues"][queue]]
    ready = checks["redis"] and checks["queues"][SCORING_QUEUE] > 0 and not unbounded
    return ready, {**checks, "missing": missing}
