"""/v1/studies: run a study on architectures with ground truth, follow it, read its figures, cancel it
(archscore.service.studies)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Response

from archscore.estimators.analysis import list_studies
from archscore.service import studies
from archscore.service.deps import CallerDep, CeleryDep, RedisDep, SettingsDep, checked_wait
from archscore.service.routes import v1_router
from archscore.service.schemas import StudyRequest

router = v1_router(tags=["studies"])
StudyId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the id returned by POST /v1/studies")]


@router.get("/studies", summary="The studies: name and what each measures")
async def get_studies() -> list[dict]:
    return [{"name": s.name, "description": s.description} for s in list_studies()]


@router.post("/studies", status_code=202, summary="Run a study on architectures with ground truth")
async def post_study(
    body: StudyRequest, redis: RedisDep, settings: SettingsDep, caller: CallerDep, celery: CeleryDep
) -> dict:
    record = await studies.start_study(body, settings, redis, caller, celery)
    return await studies.render_study(redis, settings, record)


@router.get("/studies/runs", summary="The most recent studies, newest first, with their status and figures")
async def get_study_runs(
    redis: RedisDep,
    settings: SettingsDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[dict]:
    return await studies.recent_studies(redis, settings, caller, limit)


@router.get("/studies/{study_id}", summary="A study: progress, then its numbers and links to its figures")
async def get_study_result(
    study_id: StudyId,
    redis: RedisDep,
    settings: SettingsDep,
    caller: CallerDep,
    wait: Annotated[
        float, Query(ge=0, description="seconds to wait for the scores (at most the server's bound)")
    ] = 0.0,
) -> dict:
    wait = checked_wait(wait, settings)
    record = await studies.load_study(redis, study_id, caller)
    if wait:
        await studies.wait_for_study(redis, record, wait)
    return await studies.render_study(redis, settings, record)


@router.delete(
    "/studies/{study_id}",
    summary="Cancel a study: its scoring jobs are cancelled and it is not run",
    description="409 when the study has finished.",
)
async def delete_study(
    study_id: StudyId, redis: RedisDep, settings: SettingsDep, caller: CallerDep, celery: CeleryDep
) -> dict:
    record = await studies.load_study(redis, study_id, caller)
    await studies.cancel_study(redis, settings, record, celery.control.revoke)
    return await studies.render_study(redis, settings, record)


@router.get(
    "/studies/{study_id}/figures/{name}.png",
    summary="A figure of a finished study",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def get_study_figure(
    study_id: StudyId,
    name: Annotated[str, Path(pattern="^[A-Za-z0-9_-]{1,100}$")],
    redis: RedisDep,
    caller: CallerDep,
) -> Response:
    await studies.load_study(redis, study_id, caller)
    return Response(await studies.study_figure(redis, study_id, name), media_type="image/png")
