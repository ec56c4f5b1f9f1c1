"""/v1/truth: upload and delete ground-truth tables (archscore.service.truth_tables)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from archscore.service import truth_tables
from archscore.service.deps import CallerDep, RedisDep, SettingsDep
from archscore.service.routes import v1_router
from archscore.service.routes.spaces import space_or_404

router = v1_router()


@router.put(
    "/truth/{space}/{name}",
    summary="Upload a ground-truth table",
    description='Body: CSV (`arch,value`) or JSON (`{encoding: value}` or `[{"arch", "value"}]`), or the '
    'published NDS records (a list of records holding `net`, or `{"top": [...], "mid": [...]}`; value = 100 - '
    "the chosen top-1 error). Records of another space (an NDS record of the other block type) are left out and "
    "counted in `skipped`. Replaces a table of the same name; built-in column names are reserved. The body is "
    "read as text whatever its Content-Type (text/plain, text/csv or application/json).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the table, CSV or JSON",
            "content": {
                kind: {"schema": {"type": "string"}} for kind in ("text/plain", "text/csv", "application/json")
            },
        }
    },
)
async def put_truth(
    space: str,
    name: str,
    request: Request,
    caller: CallerDep,
    redis: RedisDep,
    settings: SettingsDep,
    column: Annotated[
        str | None,
        Query(
            max_length=64,
            description="CSV: the value column (default: the only one besides arch). NDS records: "
            "min_test_top1 (default: the lowest test error) or test_ep_top1 (the last epoch's, NASWOT's choice)",
        ),
    ] = None,
) -> dict:
    sp = space_or_404(space)
    table = await truth_tables.put_table(redis, settings, caller, sp, name, await request.body(), column)
    return {
        "space": sp.name,
        "name": name,
        "rows": len(table),
        "column": table.column,
        "skipped": [{"count": n, "reason": reason} for reason, n in table.skipped.items()],
    }


@router.delete(
    "/truth/{space}/{name}",
    summary="Delete an uploaded ground-truth table",
    description="Frees its room under ARCHSCORE_MAX_TRUTH_TABLES and ARCHSCORE_MAX_TRUTH_ROWS_TOTAL; the "
    "rankings computed against it go with it. Built-in columns cannot be deleted.",
)
async def delete_truth(space: str, name: str, caller: CallerDep, redis: RedisDep) -> dict:
    sp = space_or_404(space)
    rows = await truth_tables.delete_table(redis, caller, sp, name)
    return {"space": sp.name, "name": name, "deleted": True, "rows": rows}
