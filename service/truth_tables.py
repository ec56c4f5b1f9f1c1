"""Ground truth for the service: the built-in columns of the library and tables uploaded to Redis,
both looked up by the space's truth key (``SearchSpace.truth_key``)."""

from __future__ import annotations

from redis.asyncio import Redis

from archscore.estimators.spaces.base import SearchSpace
from archscore.estimators.truth import load_builtin
from archscore.service import store


def stored_name(space: SearchSpace, name: str, owner: str) -> str:
    """The name a ground-truth column is kept under: a built-in column as it is; an uploaded table in its
    key's namespace (``{owner}/{name}``; "/" is not allowed in a table name, so namespaces never meet)."""
    if name in space.ground_truth_columns or not owner:
        return name
    return f"{owner}/{name}"


def shown_name(stored: str | None) -> str | None:
    """The name its owner gave a column (``stored_name`` undone)."""
    return None if stored is None else stored.rsplit("/", 1)[-1]


async def truth_values(redis: Redis, space: SearchSpace, name: str, keys: list[str]) -> dict[str, float]:
    """Ground truth of the given truth keys (those that have one)."""
    if name in space.ground_truth_columns:
        table = load_builtin(space.name, name).values  # cached after the first call
        return {k: table[k] for k in keys if k in table}
    raw = await redis.hmget(store.truth_key(space.name, name), keys) if keys else []
    return {k: float(v) for k, v in zip(keys, raw) if v is not None}
