"""Ground truth for the service: the built-in columns of the library and tables uploaded to Redis,
both looked up by the space's truth key (``SearchSpace.truth_key``)."""

from __future__ import annotations

from redis.asyncio import Redis

from archscore.estimators.spaces.base import SearchSpace
from archscore.estimators.truth import load_builtin
from archscore.service import store


async def truth_values(redis: Redis, space: SearchSpace, name: str, keys: list[str]) -> dict[str, float]:
    """Ground truth of the given truth keys (those that have one)."""
    if name in space.ground_truth_columns:
        table = load_builtin(space.name, name).values  # cached after the first call
        return {k: table[k] for k in keys if k in table}
    raw = await redis.hmget(store.truth_key(space.name, name), keys) if keys else []
    return {k: float(v) for k, v in zip(keys, raw) if v is not None}
