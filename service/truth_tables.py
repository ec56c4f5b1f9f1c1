"""Ground truth for the service: the built-in columns of the library and tables uploaded to Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from estimators.spaces.base import SearchSpace
from estimators.truth import load_builtin
from service import store


async def truth_values(redis: Redis, space: SearchSpace, name: str, archs: list[str]) -> dict[str, float]:
    """Ground truth of the given architecture strings (those that have one)."""
    if name in space.ground_truth_columns:
        table = load_builtin(space.name, name)  # cached after the first call
        values = {}
        for arch in archs:
            v = table.get(space.parse(arch))
            if v is not None:
                values[arch] = v
        return values
    raw = await redis.hmget(store.truth_key(space.name, name), archs) if archs else []
    return {a: float(v) for a, v in zip(archs, raw) if v is not None}
