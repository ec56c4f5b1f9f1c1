"""/healthz, /readyz and /metrics: for the orchestrator and the monitoring, outside /v1 and its keys."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from archscore.service.deps import RedisDep, SettingsDep, celery_for
from archscore.service.metrics import exposition
from archscore.service.readiness import readiness

router = APIRouter()


@router.get("/healthz", summary="The API process is up")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready when Redis and a scoring worker answer; `missing` lists every part that does not "
    "(without a training worker, supernet jobs wait in their queue)",
    responses={503: {"description": "not ready; the body says what is missing"}},
)
async def readyz(redis: RedisDep, settings: SettingsDep) -> JSONResponse:
    ready, checks = await readiness(redis, settings, celery_for(settings))
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "text format 0.0.4"}},
)
async def metrics(redis: RedisDep, settings: SettingsDep) -> Response:
    # this process's metrics, and the queues, workers, chunks and trainings as Redis has them now
    return Response(await exposition(redis, celery_for(settings)), media_type=CONTENT_TYPE_LATEST)
