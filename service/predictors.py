"""Few-shot predictors over the API: a predictor has its training architectures scored (from the cache,
the rest enqueued like POST /v1/scores), is fitted once those scores exist (the trees take well under a
second: the API fits them when the job is first read as done), and is then named ``predictor:NAME`` in
score requests, where it is applied to the members' scores when the answer is given
(archscore.estimators.predictor).

Predictors live in their key's namespace (``owner``) and never expire; a key keeps at most
ARCHSCORE_MAX_PREDICTORS of them.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.records import PredictorRecord
from archscore.contract.settings import Settings
from archscore.estimators.catalog import ONE_SHOT, PREDICTOR_PREFIX, ZERO_SHOT
from archscore.estimators.one_shot.registry import unnamed_supernet
from archscore.estimators.predictor import (
    MIN_TRAIN,
    PredictorError,
    PredictorModel,
    default_estimators,
    fit,
    prior_members,
)
from archscore.estimators.spaces.base import FEATURES, SearchSpace, get_space
from archscore.service import jobs
from archscore.service.deps import Caller
from archscore.service.errors import ApiError
from archscore.service.schemas import PredictorRequest, ScoreRequest
from archscore.service.scoring.enqueue import scoring_job
from archscore.service.scoring.results import job_results
from archscore.service.scoring.validate import validate
from archscore.service.truth_tables import shown_name


async def start_predictor(
    body: PredictorRequest, settings: Settings, redis: Redis, caller: Caller, celery
) -> PredictorRecord:
    """Check the request, have its training set scored; the stored record. A predictor of the same name is
    replaced (as an uploaded truth table is)."""
    try:
        space = get_space(body.space)
    except KeyError as exc:
        raise ApiError(422, "unknown search space", [("space", exc.args[0])]) from None
    names = body.estimators if body.estimators is not None else await _default_estimators(body, space, settings, caller)
    problems = [
        (
            f"estimators[{i}]",
            f"{name!r} is not a zero-shot estimator (nor a one-shot one); a predictor reads their scores",
        )
        for i, name in enumerate(names)
        if name not in ZERO_SHOT and name not in ONE_SHOT
    ]
    if body.encoding and not space.has(FEATURES):
        problems.append(("encoding", f"search space {space.name} has no encoding features; set encoding to false"))
    prior: list[str] = []
    try:
        prior = list(prior_members(space.name, body.prior, names))
    except PredictorError as exc:
        problems.append(("prior", str(exc).removeprefix("prior: ")))
    if problems:
        raise ApiError(422, "invalid request", problems)
    archs = (
        body.archs if body.archs is not None else [space.to_json(a) for a in space.sample(body.train or 0, body.seed)]
    )
    given = {"truth": body.truth} if "truth" in body.model_fields_set else {}
    estimators = list(dict.fromkeys([*names, *prior]))
    request = ScoreRequest(space=space.name, archs=archs, estimators=estimators, protocol=body.protocol, **given)
    valid = await validate(request, settings, redis, caller)
    if valid.truth is None:
        raise ApiError(
            422,
            "a predictor needs labels",
            [("truth", f"{space.name} has no built-in ground truth; upload a table and name it")],
        )
    key = store.predictor_key(caller.owner, body.name)
    previous = store.decode_predictor(await redis.get(key))
    if previous is None and await redis.hlen(store.predictors_key(caller.owner)) >= settings.max_predictors:
        raise ApiError(
            507,
            "too many predictors",
            [("name", f"{settings.max_predictors} are kept per key (ARCHSCORE_MAX_PREDICTORS); delete one first")],
        )
    if previous is not None:  # replaced: its training set, when still being scored, is no longer needed
        await _cancel_training(redis, settings, previous, celery.control.revoke)
    record = PredictorRecord(
        name=body.name,
        owner=caller.owner,
        space=space.name,
        truth=valid.truth,
        estimators=valid.estimators,
        encoding=body.encoding,
        prior=prior,
        seed=body.seed,
        protocol=valid.protocol_fields,
        protocol_hash=valid.protocol_hash,
        job=await scoring_job(valid, settings, redis, caller, celery),
        created=time.time(),
    )
    pipe = redis.pipeline()
    pipe.set(key, store.encode_record(record))
    pipe.hset(store.predictors_key(caller.owner), body.name, record.created)
    await pipe.execute()
    return record


async def _default_estimators(body: PredictorRequest, space: SearchSpace, settings: Settings, caller: Caller):
    """The features of a request that names none: archscore.estimators.predictor.default_estimators, the
    one-shot ones included where a supernet of the space is at hand (protocol.oneshot.supernet, else the
    newest complete one the caller sees, else the built-in one)."""
    if body.protocol.oneshot.supernet is not None:
        return list(default_estimators(True))
    found = await run_in_threadpool(unnamed_supernet, settings.supernet_path, space.name, caller.checkpoints)
    return list(default_estimators(found is not None))


async def load_predictor(redis: Redis, name: str, caller: Caller) -> PredictorRecord:
    """The caller's predictor ``name``; 404 when there is none."""
    record = store.decode_predictor(await redis.get(store.predictor_key(caller.owner, name)))
    if record is None:
        raise ApiError(404, f"no predictor {name!r}")
    return record


async def list_predictors(redis: Redis, caller: Caller) -> list[dict]:
    bodies = []
    for name in sorted(await redis.hkeys(store.predictors_key(caller.owner))):
        record = store.decode_predictor(await redis.get(store.predictor_key(caller.owner, name)))
        if record is not None:
            bodies.append(await render_predictor(redis, record))
    return bodies


async def fitted_predictors(redis: Redis, owner: str, space: str, protocol_hash: str) -> dict[str, PredictorModel]:
    """The owner's fitted predictors of ``space`` whose estimators are scored under ``protocol_hash``, by
    the name a score request gives them (``predictor:NAME``); those this version cannot read are left out."""
    names = sorted(await redis.hkeys(store.predictors_key(owner)))
    raws = await redis.mget([store.predictor_key(owner, n) for n in names]) if names else []
    out = {}
    for raw in raws:
        record = store.decode_predictor(raw)
        if record is None or record.model is None or record.space != space or record.protocol_hash != protocol_hash:
            continue
        model = PredictorModel.model_validate(record.model)
        try:
            model.check_space(get_space(space))
        except PredictorError:
            continue
        out[PREDICTOR_PREFIX + record.name] = model
    return out


async def delete_predictor(redis: Redis, settings: Settings, record: PredictorRecord, revoke: jobs.Revoke) -> None:
    """Remove the predictor; its training job, when still scoring, is cancelled."""
    await _cancel_training(redis, settings, record, revoke)
    pipe = redis.pipeline()
    pipe.delete(store.predictor_key(record.owner, record.name))
    pipe.hdel(store.predictors_key(record.owner), record.name)
    await pipe.execute()


async def _cancel_training(redis: Redis, settings: Settings, record: PredictorRecord, revoke: jobs.Revoke) -> None:
    done, total = await jobs.job_progress(redis, record.job)
    if done < total and not await redis.exists(store.job_cancelled_key(record.job.job_id)):
        await jobs.cancel_job(redis, record.job, settings, revoke)


async def wait_for_predictor(redis: Redis, record: PredictorRecord, seconds: float) -> None:
    if record.model is None and record.error is None:
        await jobs.wait_for_job(redis, record.job, seconds)


async def render_predictor(redis: Redis, record: PredictorRecord) -> dict:
    """The predictor's body; one whose training set is scored is fitted first."""
    done, total = await jobs.job_progress(redis, record.job)
    cancelled = done < total and bool(await redis.exists(store.job_cancelled_key(record.job.job_id)))
    if record.model is None and record.error is None and done >= total:
        await _fit(redis, record)
    if record.model is not None:
        status = "done"
    elif record.error is not None:
        status = "failed"
    else:
        status = "cancelled" if cancelled else "running" if done else "queued"
    model = PredictorModel.model_validate(record.model) if record.model else None
    return {
        "name": record.name,
        "estimator": PREDICTOR_PREFIX + record.name,
        "status": status,
        "progress": {"done": done, "total": total},
        "job_id": record.job.job_id,
        "space": record.space,
        "truth": shown_name(record.truth),
        "estimators": record.estimators,
        "encoding": record.encoding,
        "prior": record.prior,
        "seed": record.seed,
        "protocol_hash": record.protocol_hash,
        "train": len(model.train) if model else None,
        "library": model.library if model else None,
        "error": record.error,
    }


def model_document(record: PredictorRecord) -> dict:
    """The fitted model as ``predictor.json`` holds it; 409 while there is none."""
    if record.model is None:
        why = record.error or "its training set is still being scored"
        raise ApiError(409, f"predictor {record.name!r} is not fitted", [("name", why)])
    return record.model


async def _fit(redis: Redis, record: PredictorRecord) -> None:
    """Fit the trees on the job's scores and the ground truth, and store the model (or why it failed)."""
    space = get_space(record.space)
    results = [r for r in await job_results(redis, record.job) if r["ground_truth"] is not None]
    if len(results) < MIN_TRAIN:
        record.error = (
            f"{len(results)} of the training architectures have ground truth in {shown_name(record.truth)!r}; "
            f"at least {MIN_TRAIN} are needed"
        )
    else:
        try:
            model = await run_in_threadpool(
                fit,
                space,
                [space.parse(r["arch"]) for r in results],
                [r["ground_truth"] for r in results],
                [r["scores"] for r in results],
                estimators=record.estimators,
                truth=shown_name(record.truth) or "",
                protocol=record.protocol,
                seed=record.seed,
                encoding=record.encoding,
                prior=record.prior,
            )
            record.model = model.model_dump(mode="json")
        except PredictorError as exc:
            record.error = str(exc)
    key = store.predictor_key(record.owner, record.name)
    if await redis.exists(key):  # not deleted meanwhile
        await redis.set(key, store.encode_record(record))


async def models_for(redis: Redis, owner: str, names: list[str]) -> dict[str, PredictorModel | None]:
    """The fitted model of each predictor name (``predictor:NAME``) of ``owner``; None where it is gone or
    not fitted."""
    out: dict[str, PredictorModel | None] = {}
    for name in names:
        raw = await redis.get(store.predictor_key(owner, name.removeprefix(PREDICTOR_PREFIX)))
        record = store.decode_predictor(raw)
        out[name] = PredictorModel.model_validate(record.model) if record and record.model else None
    return out
