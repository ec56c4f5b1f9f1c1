"""/v1/spaces and /v1/estimators: what can be scored, and an encoding's canonical form."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from archscore.estimators.catalog import ESTIMATORS
from archscore.estimators.spaces import get_space, list_spaces
from archscore.estimators.spaces.base import SearchSpace, decode_text_encoding
from archscore.service.errors import ApiError
from archscore.service.routes import v1_router
from archscore.service.schemas import EXAMPLE_ARCH

router = v1_router()


def space_or_404(name: str) -> SearchSpace:
    try:
        return get_space(name)
    except KeyError as exc:
        raise ApiError(404, exc.args[0]) from None


@router.get("/estimators", summary="Estimators: name, kind, direction, needs data, version, a plugin's module")
async def get_estimators() -> list[dict]:
    """The built-in estimators, then those of the plugins installed where the API runs (their facts, read
    from their entry points without importing their code)."""
    return [e.to_dict() for e in ESTIMATORS.values()]


@router.get("/spaces", summary="Search spaces: encodings accepted, size, ground-truth columns")
async def get_spaces() -> list[dict]:
    return [get_space(n).describe() for n in list_spaces()]


@router.get("/spaces/{space}/canonical", summary="Validate an encoding and return its string form and canonical key")
async def get_canonical(
    space: str,
    arch: Annotated[str, Query(description="encoding; JSON lists and integers are decoded", examples=[EXAMPLE_ARCH])],
) -> dict:
    sp = space_or_404(space)
    try:
        parsed = sp.parse(decode_text_encoding(arch))
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, "invalid architecture", [("arch", str(exc) or "too deeply nested")]) from None
    return {
        "space": sp.name,
        "arch": sp.to_string(parsed),
        "canonical_key": sp.canonical_key(parsed),
        "representative": sp.to_string(sp.representative(parsed)),
    }
