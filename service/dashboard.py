"""The dashboard: a static page (service/static: the page, its script and the vendored Chart.js; no
build step, no outside resources) that reads the JSON API, and the one endpoint it needs beyond it: the
(score, truth) points behind a scatter. Its responses forbid framing, sniffing and any other origin."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from archscore.estimators.analysis import records
from archscore.estimators.catalog import ESTIMATORS
from archscore.estimators.spaces.base import get_space
from archscore.service import store
from archscore.service.analytic import analytic_names, analytic_scores
from archscore.service.deps import CallerDep, RedisDep, SettingsDep, require_api_key
from archscore.service.errors import ERRORS, ApiError
from archscore.service.truth_tables import stored_name, truth_values

MAX_POINTS = 5000
router = APIRouter()
data = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERRORS, tags=["dashboard"])


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
VENDORED = {"chart.umd.min.js"}  # the only files served from static/vendor: no path comes from the request


def _static(name: str) -> str:
    return (resources.files("archscore.service") / "static" / name).read_text(encoding="utf-8")


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_static("dashboard.html"), headers=SECURITY_HEADERS)


@router.get("/dashboard/dashboard.js", include_in_schema=False)
async def dashboard_script() -> Response:
    return Response(_static("dashboard.js"), media_type="text/javascript", headers=SECURITY_HEADERS)


@router.get("/dashboard/vendor/{name}", include_in_schema=False)
async def vendored(name: str) -> Response:
    if name not in VENDORED:
        raise ApiError(404, f"no file {name!r}")
    return Response(_static(f"vendor/{name}"), media_type="text/javascript",
                    headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"})


@data.get("/rankings/{space}/points", summary="(score, ground truth) of every scored architecture, for a scatter")
async def get_points(
    space: Annotated[str, Path(description="search space")],
    redis: RedisDep,
    caller: CallerDep,
    protocol_hash: Annotated[str, Query(pattern="^[0-9a-f]{16}$")],
    truth: Annotated[str, Query(max_length=64)],
    estimator: Annotated[str, Query(max_length=64)],
) -> dict:
    try:
        sp = get_space(space)
    except KeyError as exc:
        raise ApiError(404, exc.args[0]) from None
    if estimator not in ESTIMATORS:
        raise ApiError(422, "unknown estimator", [("estimator", f"{estimator!r}; available: {', '.join(ESTIMATORS)}")])
    members = await redis.hgetall(store.members_key(sp.name, protocol_hash))  # arch -> canonical
    archs = sorted(members)[:MAX_POINTS]
    truth_keys = await run_in_threadpool(lambda: {a: sp.truth_key(sp.parse(a)) for a in archs})
    truth_by_key = await truth_values(redis, sp, stored_name(sp, truth, caller.owner),
                                      list(dict.fromkeys(truth_keys.values())))
    if estimator in analytic_names(sp, [estimator]):
        protocol = store.decode(await redis.get(store.protocol_key(sp.name, protocol_hash))) or {}
        scores = {a: analytic_scores(sp, a, [estimator], protocol)[estimator] for a in archs}
    else:
        key = store.score_key(sp.name, protocol_hash, estimator, ESTIMATORS[estimator].version)
        canon = [members[a] for a in archs]
        cells = await redis.hmget(key, canon) if canon else []
        scores = {a: (store.decode(c) or {}).get("value") for a, c in zip(archs, cells)}
    points = [[scores[a], truth_by_key[truth_keys[a]], a] for a in archs
              if scores.get(a) is not None and truth_keys[a] in truth_by_key]
    return {"space": sp.name, "protocol_hash": protocol_hash, "truth": truth, "estimator": estimator,
            "points": points}


# The studies run by `archscore study` on this host (archscore.estimators.analysis.records): the
# operator's, so on a server with keys only an admin key lists them. Not in the API document: they
# are the dashboard's view of the data folder, not part of the API.
CLI_STUDIES = 20


@data.get("/dashboard/cli-studies", include_in_schema=False)
async def cli_studies(settings: SettingsDep, caller: CallerDep) -> list[dict]:
    if not caller.may_see(""):
        return []
    root = records.records_dir(settings.data_dir)

    def read() -> list[dict]:
        runs = []
        for record_id in records.record_ids(root)[:CLI_STUDIES]:
            body = records.read_record(record_id, root)
            if body is None:
                continue
            inputs = body.get("inputs") or {}
            runs.append({"id": record_id, "study": body.get("study"), "space": inputs.get("space"),
                         "truth": inputs.get("truth"), "n": inputs.get("n"),
                         "created": (body.get("record") or {}).get("created"),
                         "figures": {name: f"/v1/dashboard/cli-studies/{record_id}/figures/{name}.png"
                                     for name in body.get("figures") or [] if records.FIGURE_NAME.match(name)}})
        return runs

    return await run_in_threadpool(read)


@data.get("/dashboard/cli-studies/{record_id}/figures/{name}.png", include_in_schema=False)
async def cli_study_figure(record_id: str, name: str, settings: SettingsDep, caller: CallerDep) -> Response:
    path = None
    if caller.may_see(""):
        path = await run_in_threadpool(records.figure_path, record_id, name, records.records_dir(settings.data_dir))
    if path is None:
        raise ApiError(404, f"no figure {name!r} of a CLI study {record_id!r}")
    return FileResponse(path, media_type="image/png", headers=SECURITY_HEADERS)
