"""/dashboard: the page and its assets; /v1/dashboard: the command line's studies on this host (the
operator's, so on a server with keys only an admin key lists them; not in the API document: they are the
dashboard's view of the data folder, not part of the API)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from archscore.service.dashboard import SECURITY_HEADERS, VENDORED, cli_study_figure, cli_study_runs, static_text
from archscore.service.deps import CallerDep, SettingsDep
from archscore.service.errors import ApiError
from archscore.service.routes import v1_router

router = APIRouter(include_in_schema=False)
data = v1_router(tags=["dashboard"], include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(static_text("dashboard.html"), headers=SECURITY_HEADERS)


@router.get("/dashboard/dashboard.js")
async def dashboard_script() -> Response:
    return Response(static_text("dashboard.js"), media_type="text/javascript", headers=SECURITY_HEADERS)


@router.get("/dashboard/vendor/{name}")
async def vendored(name: str) -> Response:
    if name not in VENDORED:
        raise ApiError(404, f"no file {name!r}")
    return Response(
        static_text(f"vendor/{name}"),
        media_type="text/javascript",
        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"},
    )


@data.get("/dashboard/cli-studies")
async def cli_studies(settings: SettingsDep, caller: CallerDep) -> list[dict]:
    if not caller.may_see(""):
        return []
    return await run_in_threadpool(cli_study_runs, settings.data_dir)


@data.get("/dashboard/cli-studies/{record_id}/figures/{name}.png")
async def cli_study_figure_png(record_id: str, name: str, settings: SettingsDep, caller: CallerDep) -> Response:
    path = None
    if caller.may_see(""):
        path = await run_in_threadpool(cli_study_figure, settings.data_dir, record_id, name)
    if path is None:
        raise ApiError(404, f"no figure {name!r} of a CLI study {record_id!r}")
    return FileResponse(path, media_type="image/png", headers=SECURITY_HEADERS)
