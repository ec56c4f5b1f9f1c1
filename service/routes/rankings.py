"""/v1/rankings: ranking-quality statistics per protocol, and the points behind the dashboard's scatter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from archscore.estimators.catalog import ESTIMATORS, is_predictor
from archscore.service.deps import CallerDep, RedisDep
from archscore.service.errors import ApiError
from archscore.service.predictors import fitted_predictors
from archscore.service.rankings import predictor_criteria, ranking_points, rankings_page
from archscore.service.routes import v1_router
from archscore.service.routes.spaces import space_or_404
from archscore.service.scoring.validate import truth_exists
from archscore.service.truth_tables import stored_name

router = v1_router()
dashboard_data = v1_router(tags=["dashboard"])
MAX_OFFSET = 1_000_000  # far past any real page, well inside Redis's 64-bit indices


@router.get(
    "/rankings/{space}",
    summary="Ranking-quality statistics of every estimator, per protocol, most recently used protocol first",
    description="Paginated with `offset` and `limit`; `protocol_hash` selects one protocol. Protocols unused "
    "for the cache lifetime (ARCHSCORE_CACHE_TTL_SECONDS) are forgotten with their scores. The caller's fitted "
    "predictors of the space (`predictor:NAME`) are ranked beside the estimators under the protocol of their "
    "fit, over the architectures scored with all their estimators, leaving out their training classes.",
)
async def get_rankings(
    space: str,
    redis: RedisDep,
    caller: CallerDep,
    truth: Annotated[str | None, Query(description="ground-truth column; default: the space's first")] = None,
    protocol_hash: Annotated[str | None, Query(pattern="^[0-9a-f]{16}$", description="one protocol")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="protocols to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="protocols per page")] = 20,
) -> dict:
    sp = space_or_404(space)
    truth = truth or (sp.ground_truth_columns[0] if sp.ground_truth_columns else None)
    stored = None if truth is None else stored_name(sp, truth, caller.owner)
    if stored is None or not await truth_exists(redis, sp, stored):
        raise ApiError(422, "unknown ground truth", [("truth", f"no ground-truth column {truth!r} for {sp.name}")])
    total, reports = await rankings_page(redis, sp, stored, protocol_hash, offset, limit)
    for report in reports:  # the caller's own predictors, beside the estimators every caller sees
        models = await fitted_predictors(redis, caller.owner, sp.name, report["protocol_hash"])
        report["estimators"].update(await predictor_criteria(redis, sp, report["protocol_hash"], stored, models))
    next_offset = offset + limit if protocol_hash is None and offset + limit < total else None
    return {
        "space": sp.name,
        "truth": truth,
        "total": total,
        "offset": offset,
        "next_offset": next_offset,
        "rankings": reports,
    }


@dashboard_data.get(
    "/rankings/{space}/points", summary="(score, ground truth) of every scored architecture, for a scatter"
)
async def get_points(
    space: Annotated[str, Path(description="search space")],
    redis: RedisDep,
    caller: CallerDep,
    protocol_hash: Annotated[str, Query(pattern="^[0-9a-f]{16}$")],
    truth: Annotated[str, Query(max_length=64)],
    estimator: Annotated[str, Query(max_length=64)],
) -> dict:
    sp = space_or_404(space)
    model = None
    if is_predictor(estimator):
        model = (await fitted_predictors(redis, caller.owner, sp.name, protocol_hash)).get(estimator)
        if model is None:
            reason = f"no fitted predictor {estimator!r} of {sp.name} under this protocol (GET /v1/predictors)"
            raise ApiError(422, "unknown estimator", [("estimator", reason)])
    elif estimator not in ESTIMATORS:
        raise ApiError(422, "unknown estimator", [("estimator", f"{estimator!r}; available: {', '.join(ESTIMATORS)}")])
    points = await ranking_points(redis, sp, protocol_hash, stored_name(sp, truth, caller.owner), estimator, model)
    return {"space": sp.name, "protocol_hash": protocol_hash, "truth": truth, "estimator": estimator, "points": points}
