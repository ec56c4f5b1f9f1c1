"""/v1/predictors: fit a few-shot predictor on labelled architectures, follow it, download it, delete it
(archscore.service.predictors). A fitted predictor is then an estimator of score requests:
``predictor:NAME``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from archscore.service import predictors
from archscore.service.deps import CallerDep, CeleryDep, RedisDep, SettingsDep, checked_wait
from archscore.service.routes import v1_router
from archscore.service.schemas import PREDICTOR_NAME, Predictor, PredictorRequest

router = v1_router(tags=["predictors"])
Name = Annotated[str, Path(pattern=PREDICTOR_NAME, description="the name given to POST /v1/predictors")]


@router.post(
    "/predictors",
    response_model=Predictor,
    status_code=202,
    summary="Fit a few-shot predictor",
    description="Scores the training architectures with the estimators (from the cache, the rest enqueued), "
    "then fits gradient-boosted trees (LightGBM) to their ground truth, with the space's encoding features. "
    "Follow it with GET /v1/predictors/{name}; once done, score requests name it predictor:NAME (under the "
    "same protocol). A predictor of the same name is replaced.",
)
async def post_predictor(
    body: PredictorRequest, redis: RedisDep, settings: SettingsDep, caller: CallerDep, celery: CeleryDep
) -> dict:
    record = await predictors.start_predictor(body, settings, redis, caller, celery)
    return await predictors.render_predictor(redis, record)


@router.get("/predictors", response_model=list[Predictor], summary="The caller's predictors")
async def get_predictors(redis: RedisDep, caller: CallerDep) -> list[dict]:
    return await predictors.list_predictors(redis, caller)


@router.get("/predictors/{name}", response_model=Predictor, summary="A predictor: progress, then its fit")
async def get_predictor(
    name: Name,
    redis: RedisDep,
    caller: CallerDep,
    settings: SettingsDep,
    wait: Annotated[
        float, Query(ge=0, description="seconds to wait for the training set's scores (at most the server's bound)")
    ] = 0.0,
) -> dict:
    wait = checked_wait(wait, settings)
    record = await predictors.load_predictor(redis, name, caller)
    if wait:
        await predictors.wait_for_predictor(redis, record, wait)
    return await predictors.render_predictor(redis, record)


@router.get(
    "/predictors/{name}/model",
    summary="A fitted predictor's file",
    description="The JSON document `archscore predictor` reads and writes (predictor.json): training set, "
    "labels, features, seed, LightGBM's version and text model. 409 until it is fitted.",
)
async def get_predictor_model(name: Name, redis: RedisDep, caller: CallerDep) -> dict:
    record = await predictors.load_predictor(redis, name, caller)
    await predictors.render_predictor(redis, record)  # fits it when its scores are in
    return predictors.model_document(record)


@router.delete("/predictors/{name}", summary="Delete a predictor (its training job is cancelled when unfinished)")
async def delete_predictor(
    name: Name, redis: RedisDep, settings: SettingsDep, caller: CallerDep, celery: CeleryDep
) -> dict:
    record = await predictors.load_predictor(redis, name, caller)
    await predictors.delete_predictor(redis, settings, record, celery.control.revoke)
    return {"deleted": name}
