"""Ground truth for the service: the built-in columns of the library and tables uploaded to Redis,
both looked up by the space's truth key (``SearchSpace.truth_key``); uploads are bounded in number and
rows, and kept in their key's namespace."""

from __future__ import annotations

import re

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.settings import Settings
from archscore.estimators.spaces.base import SearchSpace
from archscore.estimators.truth import GroundTruth, TruthError, load_builtin, parse_table
from archscore.service.deps import Caller
from archscore.service.errors import ApiError
from archscore.service.schemas import TRUTH_NAME

TRUTH_NAME_PATTERN = re.compile(TRUTH_NAME)


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


def _check_name(space: SearchSpace, name: str) -> None:
    if not TRUTH_NAME_PATTERN.fullmatch(name):  # fullmatch: "$" alone would accept a trailing newline
        raise ApiError(422, "invalid table name", [("name", "use 1-64 letters, digits, '_' or '-'")])
    if name in space.ground_truth_columns:
        raise ApiError(422, "reserved table name", [("name", f"{name!r} is a built-in column of {space.name}")])


async def put_table(
    redis: Redis, settings: Settings, caller: Caller, space: SearchSpace, name: str, body: bytes, column: str | None
) -> GroundTruth:
    """Parse an uploaded table (CSV or JSON) and keep it as ``caller``'s table ``name``, replacing one of
    that name; the rankings computed against the old one go. 422/413/507 naming the problem."""
    try:
        content = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid ground-truth table", [("body", "not UTF-8 text")]) from None
    if not content.strip():
        raise ApiError(422, "invalid ground-truth table", [("body", "empty: send the table as CSV or JSON")])
    _check_name(space, name)
    try:
        table = await run_in_threadpool(parse_table, content, space.name, column, None, "body")
    except TruthError as exc:
        raise ApiError(422, "invalid ground-truth table", [("body", str(exc))]) from None
    if len(table) > settings.max_truth_rows:
        raise ApiError(413, "table too large", [("body", f"{len(table)} rows, at most {settings.max_truth_rows}")])
    stored = stored_name(space, name, caller.owner)
    await _check_room(redis, settings, caller, store.truth_table_id(space.name, stored), len(table))
    key = store.truth_key(space.name, stored)
    pipe = redis.pipeline()
    pipe.delete(key)
    pipe.hset(key, mapping=table.values)  # truth key -> value
    pipe.hset(store.truth_tables_key(), store.truth_table_id(space.name, stored), len(table))
    await _void_rankings(redis, pipe, space.name, stored)
    await pipe.execute()
    return table


async def delete_table(redis: Redis, caller: Caller, space: SearchSpace, name: str) -> int:
    """Delete ``caller``'s uploaded table ``name`` and the rankings computed against it; its rows."""
    if name in space.ground_truth_columns:
        raise ApiError(422, "reserved table name", [("name", f"{name!r} is a built-in column of {space.name}")])
    stored = stored_name(space, name, caller.owner)
    table_id = store.truth_table_id(space.name, stored)
    rows = await redis.hget(store.truth_tables_key(), table_id)
    if rows is None and not await redis.exists(store.truth_key(space.name, stored)):
        raise ApiError(404, f"no uploaded ground-truth table {name!r} for {space.name}")
    pipe = redis.pipeline()
    pipe.delete(store.truth_key(space.name, stored))
    pipe.hdel(store.truth_tables_key(), table_id)
    await _void_rankings(redis, pipe, space.name, stored)
    await pipe.execute()
    return int(rows or 0)


async def _check_room(redis: Redis, settings: Settings, caller: Caller, table_id: str, rows: int) -> None:
    """507 naming the bound when storing ``rows`` rows as ``table_id`` (replacing a table of that name)
    would pass the number of tables or the rows of all tables kept, or the caller's key's tables."""
    tables = {k: int(v) for k, v in (await redis.hgetall(store.truth_tables_key())).items()}
    others = {k: v for k, v in tables.items() if k != table_id}
    own = [k for k in others if caller.owner and f"/{caller.owner}/" in k]
    if caller.owner and len(own) + 1 > settings.max_truth_tables_per_key:
        raise ApiError(
            507,
            "no room for another ground-truth table of this key",
            [
                (
                    "name",
                    f"this key keeps {len(own)} uploaded tables, at most {settings.max_truth_tables_per_key} "
                    "(ARCHSCORE_MAX_TRUTH_TABLES_PER_KEY): delete one with DELETE /v1/truth/{space}/{name}",
                )
            ],
        )
    if len(others) + 1 > settings.max_truth_tables:
        raise ApiError(
            507,
            "no room for another ground-truth table",
            [
                (
                    "name",
                    f"{len(others)} uploaded tables are kept, at most {settings.max_truth_tables} "
                    "(ARCHSCORE_MAX_TRUTH_TABLES): delete one with DELETE /v1/truth/{space}/{name}",
                )
            ],
        )
    if sum(others.values()) + rows > settings.max_truth_rows_total:
        raise ApiError(
            507,
            "no room for the table's rows",
            [
                (
                    "body",
                    f"{rows} rows on top of the {sum(others.values())} kept pass the bound of "
                    f"{settings.max_truth_rows_total} rows of all uploaded tables (ARCHSCORE_MAX_TRUTH_ROWS_TOTAL)",
                )
            ],
        )


async def _void_rankings(redis: Redis, pipe: Pipeline, space: str, truth: str) -> None:
    """Queue on ``pipe`` the removal of every protocol's statistics against ``truth``; bumping the
    generation also voids a recomputation running right now on the old table."""
    for protocol_hash in await redis.zrange(store.protocols_key(space), 0, -1):
        pipe.delete(store.rankings_key(space, protocol_hash, truth))
        pipe.incr(store.generation_key(space, protocol_hash))
